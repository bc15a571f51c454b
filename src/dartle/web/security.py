"""Security helpers: dependencies that read credentials and document their scheme.

Each helper is used as a dependency (`key: str = Depends(api_key)`) and appears in the
OpenAPI document as a security scheme, with the operations that use it marked. When
credentials are missing or unreadable they answer as the RFCs say:

- 401 with a `WWW-Authenticate` challenge when the request has no (usable) credentials
  (RFC 9110 section 11.6.1 requires the header on every 401); `Bearer` per RFC 6750,
  `Basic realm=..., charset="UTF-8"` per RFC 7617. API keys have no registered scheme;
  their challenge is `APIKey`.
- 400 with `Bearer error="invalid_request"` for an `Authorization: Bearer` header
  without a token (RFC 6750 section 3.1).

Deciding whether credentials are *valid* is the application's job; `invalid_token()`
(401) and `insufficient_scope()` (403) build the RFC 6750 answers for it. With
`auto_error=False` a helper returns None instead of refusing, for endpoints where
credentials are optional.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Sequence
from typing import Annotated, Any

from dartle.web.exceptions import HTTPException
from dartle.web.params import Form
from dartle.web.requests import HTTPConnection

__all__ = [
    "APIKeyCookie",
    "APIKeyHeader",
    "APIKeyQuery",
    "HTTPAuthorizationCredentials",
    "HTTPBasic",
    "HTTPBasicCredentials",
    "HTTPBearer",
    "OAuth2PasswordBearer",
    "OAuth2PasswordRequestForm",
    "SecurityBase",
    "SecurityScopes",
    "insufficient_scope",
    "invalid_token",
]


class SecurityScopes:
    """The OAuth2 scopes required by every `Security(..., scopes=[...])` above a
    dependency; declare a parameter of this type to receive them."""

    __slots__ = ("scopes",)

    def __init__(self, scopes: Sequence[str] | None = None) -> None:
        self.scopes = list(scopes or [])

    @property
    def scope_str(self) -> str:
        """The scopes space-separated, as the `scope` parameter of a challenge wants them."""
        return " ".join(self.scopes)

    def __repr__(self) -> str:
        return f"SecurityScopes({self.scopes!r})"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _challenge(scheme: str, **params: str | None) -> str:
    """`Scheme name="value", ...` (RFC 9110 section 11.3), skipping unset parameters."""
    parts = [f"{name}={_quote(value)}" for name, value in params.items() if value is not None]
    return scheme + (" " + ", ".join(parts) if parts else "")


def invalid_token(
    description: str = "The access token is invalid or expired", *, realm: str | None = None
) -> HTTPException:
    """The 401 to raise when a bearer token is not accepted (RFC 6750 section 3.1)."""
    header = _challenge("Bearer", realm=realm, error="invalid_token", error_description=description)
    return HTTPException(401, description, headers={"WWW-Authenticate": header})


def insufficient_scope(scopes: Sequence[str], *, realm: str | None = None) -> HTTPException:
    """The 403 to raise when a valid token lacks `scopes` (RFC 6750 section 3.1)."""
    needed = " ".join(scopes)
    header = _challenge(
        "Bearer",
        realm=realm,
        error="insufficient_scope",
        error_description="Not enough permissions",
        scope=needed,
    )
    return HTTPException(403, f"Requires the scopes: {needed}", headers={"WWW-Authenticate": header})


class SecurityBase:
    """What the OpenAPI document needs from a helper: a scheme name and its object."""

    model: dict[str, Any]
    scheme_name: str
    auto_error: bool = True

    def _init(self, model: dict[str, Any], scheme_name: str | None, description: str | None) -> None:
        if description:
            model["description"] = description
        self.model = model
        self.scheme_name = scheme_name or type(self).__name__

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scheme_name={self.scheme_name!r})"


# ---------------------------------------------------------------------------
# API keys
# ---------------------------------------------------------------------------


class _APIKey(SecurityBase):
    location = ""

    def __init__(
        self,
        *,
        name: str,
        scheme_name: str | None = None,
        description: str | None = None,
        auto_error: bool = True,
    ) -> None:
        self.name = name
        self.auto_error = auto_error
        self._init({"type": "apiKey", "in": self.location, "name": name}, scheme_name, description)

    def _read(self, conn: HTTPConnection) -> str | None:
        raise NotImplementedError

    async def __call__(self, request: HTTPConnection) -> str | None:
        value = self._read(request)
        if not value:
            if self.auto_error:
                raise HTTPException(401, "Not authenticated", headers={"WWW-Authenticate": "APIKey"})
            return None
        return value


class APIKeyHeader(_APIKey):
    """An API key in a request header: `APIKeyHeader(name="X-API-Key")`."""

    location = "header"

    def _read(self, conn: HTTPConnection) -> str | None:
        return conn.headers.get(self.name)


class APIKeyQuery(_APIKey):
    """An API key in the query string: `APIKeyQuery(name="api_key")`."""

    location = "query"

    def _read(self, conn: HTTPConnection) -> str | None:
        return conn.query_params.get(self.name)


class APIKeyCookie(_APIKey):
    """An API key in a cookie: `APIKeyCookie(name="session")`."""

    location = "cookie"

    def _read(self, conn: HTTPConnection) -> str | None:
        return conn.cookies.get(self.name)


# ---------------------------------------------------------------------------
# HTTP authentication (RFC 9110 section 11): Bearer and Basic
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class HTTPAuthorizationCredentials:
    """The `Authorization` header split: its scheme and its credentials."""

    scheme: str
    credentials: str


@dataclasses.dataclass(frozen=True)
class HTTPBasicCredentials:
    """A username and password from `Authorization: Basic` (decoded as UTF-8)."""

    username: str
    password: str


def _authorization(conn: HTTPConnection) -> tuple[str, str] | None:
    header = conn.headers.get("authorization")
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    return scheme, credentials.strip()


class HTTPBearer(SecurityBase):
    """`Authorization: Bearer <token>` (RFC 6750); gives HTTPAuthorizationCredentials.

    `bearer_format` documents the token's format ("JWT"); `realm` goes in challenges.
    """

    def __init__(
        self,
        *,
        bearer_format: str | None = None,
        scheme_name: str | None = None,
        description: str | None = None,
        realm: str | None = None,
        auto_error: bool = True,
    ) -> None:
        model: dict[str, Any] = {"type": "http", "scheme": "bearer"}
        if bearer_format:
            model["bearerFormat"] = bearer_format
        self.realm = realm
        self.auto_error = auto_error
        self._init(model, scheme_name, description)

    def _token(self, conn: HTTPConnection) -> str | None:
        found = _authorization(conn)
        if found is None or found[0].lower() != "bearer":
            if self.auto_error:
                raise HTTPException(
                    401,
                    "Not authenticated",
                    headers={"WWW-Authenticate": _challenge("Bearer", realm=self.realm)},
                )
            return None
        if not found[1]:
            if self.auto_error:
                description = "The Authorization header has no bearer token"
                header = _challenge(
                    "Bearer", realm=self.realm, error="invalid_request", error_description=description
                )
                raise HTTPException(400, description, headers={"WWW-Authenticate": header})
            return None
        return found[1]

    async def __call__(self, request: HTTPConnection) -> HTTPAuthorizationCredentials | None:
        token = self._token(request)
        return None if token is None else HTTPAuthorizationCredentials("Bearer", token)


class HTTPBasic(SecurityBase):
    """`Authorization: Basic <base64(user:password)>` (RFC 7617); gives
    HTTPBasicCredentials. The challenge's realm defaults to the app's title."""

    def __init__(
        self,
        *,
        realm: str | None = None,
        scheme_name: str | None = None,
        description: str | None = None,
        auto_error: bool = True,
    ) -> None:
        self.realm = realm
        self.auto_error = auto_error
        self._init({"type": "http", "scheme": "basic"}, scheme_name, description)

    def _refuse(self, conn: HTTPConnection, detail: str) -> HTTPException:
        realm = self.realm or getattr(conn.app, "title", None) or "dartle"
        header = _challenge("Basic", realm=realm, charset="UTF-8")
        return HTTPException(401, detail, headers={"WWW-Authenticate": header})

    async def __call__(self, request: HTTPConnection) -> HTTPBasicCredentials | None:
        found = _authorization(request)
        if found is None or found[0].lower() != "basic":
            if self.auto_error:
                raise self._refuse(request, "Not authenticated")
            return None
        try:
            decoded = base64.b64decode(found[1], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            decoded = ""
        username, colon, password = decoded.partition(":")
        if not colon:
            if self.auto_error:
                raise self._refuse(request, "Invalid Basic credentials: expected base64 of 'user:password'")
            return None
        return HTTPBasicCredentials(username, password)


# ---------------------------------------------------------------------------
# OAuth2 password flow (RFC 6749 section 4.3)
# ---------------------------------------------------------------------------


class OAuth2PasswordBearer(HTTPBearer):
    """A bearer token obtained from `token_url` with the password flow; gives the token.

    `scopes` maps each scope to its description, for the document (Swagger UI's
    Authorize dialog lists them).
    """

    def __init__(
        self,
        token_url: str,
        *,
        scopes: dict[str, str] | None = None,
        scheme_name: str | None = None,
        description: str | None = None,
        realm: str | None = None,
        auto_error: bool = True,
    ) -> None:
        super().__init__(scheme_name=scheme_name, description=description, realm=realm, auto_error=auto_error)
        self.token_url = token_url
        model: dict[str, Any] = {
            "type": "oauth2",
            "flows": {"password": {"tokenUrl": token_url, "scopes": dict(scopes or {})}},
        }
        self._init(model, scheme_name, description)

    async def __call__(self, request: HTTPConnection) -> str | None:  # type: ignore[override]
        return self._token(request)


class OAuth2PasswordRequestForm:
    """The form a password-flow token endpoint receives (RFC 6749 section 4.3.2):
    `form: OAuth2PasswordRequestForm = Depends()`. `scopes` is `scope` split."""

    def __init__(
        self,
        username: Annotated[str, Form()],
        password: Annotated[str, Form()],
        grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
        scope: Annotated[str, Form()] = "",
        client_id: Annotated[str | None, Form()] = None,
        client_secret: Annotated[str | None, Form()] = None,
    ) -> None:
        self.grant_type = grant_type
        self.username = username
        self.password = password
        self.scopes = scope.split()
        self.client_id = client_id
        self.client_secret = client_secret
