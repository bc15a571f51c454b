"""Sessions kept client-side in a signed, timestamped cookie.

The cookie holds the session itself (JSON), so the client can read it but not change
it: its value is `payload.timestamp.signature`, each part URL-safe base64, where the
signature is HMAC-SHA256 over the cookie name, payload and timestamp with the secret
key. A cookie whose signature does not match, that is malformed, or that is older
than `max_age` gives an empty session; it is never an error. Do not store secrets in
the session: it is signed, not encrypted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import time
from typing import Any, Literal

from dartle.web.datastructures import MutableHeaders
from dartle.web.requests import HTTPConnection
from dartle.web.responses import format_set_cookie
from dartle.web.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SessionMiddleware"]

logger = logging.getLogger("dartle.web.sessions")

# Browsers drop cookies larger than this (RFC 6265 section 6.1 asks for at least 4096
# bytes per cookie, name and attributes included, and that is what they give).
_COOKIE_LIMIT = 4096


def _b64encode(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _b64decode(data: bytes) -> bytes:
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


class SessionMiddleware:
    """Give every HTTP request and WebSocket `scope["session"]`, a dict kept in a cookie.

    The session is saved in the response whenever it is not empty (which also renews
    its `max_age`, so an active session does not expire); a session emptied by the
    app deletes the cookie. `max_age=None` makes a browser-session cookie with no
    expiry. `same_site` and `https_only` (the Secure attribute) set the cookie's
    attributes; the cookie is always HttpOnly, so page scripts cannot read it.
    WebSocket handlers can read the session but changes they make are not saved.
    """

    def __init__(
        self,
        app: ASGIApp,
        secret_key: str | bytes,
        session_cookie: str = "session",
        max_age: int | None = 14 * 24 * 60 * 60,
        path: str = "/",
        same_site: Literal["lax", "strict", "none"] = "lax",
        https_only: bool = False,
        domain: str | None = None,
    ) -> None:
        if not secret_key:
            raise ValueError("SessionMiddleware needs a non-empty secret_key")
        if same_site == "none" and not https_only:
            # Browsers reject SameSite=None cookies that are not Secure.
            raise ValueError("same_site='none' requires https_only=True")
        self.app = app
        self.secret_key = secret_key.encode() if isinstance(secret_key, str) else secret_key
        self.session_cookie = session_cookie
        self.max_age = max_age
        self.path = path
        self.same_site = same_site
        self.https_only = https_only
        self.domain = domain
        # Fail at startup, not on the first response, if the name or attributes are bad.
        format_set_cookie(session_cookie, "", path=path, domain=domain, samesite=same_site)
        self._mac_prefix = session_cookie.encode("latin-1") + b"\x00"

    # -- signing ----------------------------------------------------------------------

    def _signature(self, payload: bytes, timestamp: bytes) -> bytes:
        mac = hmac.new(self.secret_key, self._mac_prefix + payload + b"." + timestamp, hashlib.sha256)
        return _b64encode(mac.digest())

    def encode(self, session: dict[str, Any], now: float | None = None) -> str:
        """The signed cookie value for `session` (`now` is the timestamp to sign)."""
        try:
            data = json.dumps(session, separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            raise TypeError(f"the session must hold only JSON values: {exc}") from exc
        payload = _b64encode(data)
        timestamp = _b64encode(int(time.time() if now is None else now).to_bytes(8, "big"))
        return b".".join((payload, timestamp, self._signature(payload, timestamp))).decode()

    def decode(self, value: str, now: float | None = None) -> dict[str, Any]:
        """The session in cookie `value`, or `{}` if it is forged, malformed or expired."""
        try:
            payload, timestamp, signature = value.encode("ascii").split(b".")
            if not hmac.compare_digest(signature, self._signature(payload, timestamp)):
                return {}
            signed_at = int.from_bytes(_b64decode(timestamp), "big")
            if self.max_age is not None:
                age = (time.time() if now is None else now) - signed_at
                if age > self.max_age:
                    return {}
            session = json.loads(_b64decode(payload))
        except (ValueError, binascii.Error, UnicodeError):
            return {}
        return session if isinstance(session, dict) else {}

    # -- ASGI ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        cookie = HTTPConnection(scope).cookies.get(self.session_cookie)
        session = self.decode(cookie) if cookie else {}
        scope["session"] = session
        had_session = bool(session)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                current = scope["session"]
                if current:
                    header = self._set_cookie(self.encode(current), self.max_age)
                elif had_session:
                    header = self._set_cookie("", 0, expired=True)
                else:
                    header = None
                if header is not None:
                    headers = MutableHeaders(raw=list(message.get("headers", ())))
                    headers.append("set-cookie", header)
                    message = {**message, "headers": headers.raw}
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _set_cookie(self, value: str, max_age: int | None, expired: bool = False) -> str:
        header = format_set_cookie(
            self.session_cookie,
            value,
            max_age=max_age,
            expires="Thu, 01 Jan 1970 00:00:00 GMT" if expired else None,
            path=self.path,
            domain=self.domain,
            secure=self.https_only,
            httponly=True,
            samesite=self.same_site,
        )
        if len(header) > _COOKIE_LIMIT:
            logger.warning(
                "session cookie is %d bytes, more than browsers keep (%d): the session"
                " will be lost; store less in it",
                len(header),
                _COOKIE_LIMIT,
            )
        return header
