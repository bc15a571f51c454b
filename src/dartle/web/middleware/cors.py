"""Cross-Origin Resource Sharing, as the Fetch standard's CORS protocol describes it.

Two kinds of request get an answer here:

* a **preflight** (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is
  answered by the middleware itself: 200 with the `Access-Control-Allow-*` headers when
  the origin, method and headers are all allowed, or 400 naming what is not;
* any other request from an allowed origin goes to the app, and its response gets
  `Access-Control-Allow-Origin` (and `-Credentials`, `-Expose-Headers`) added.

Whenever the answer depends on the request's `Origin` (an allow-list, a regex, or
credentials), every response says `Vary: Origin`, including the answers to requests
without an `Origin`, so that no cache hands one origin's answer to another. With
`allow_origins="*"` and no credentials the answer is the same for everyone:
`Access-Control-Allow-Origin: *` goes on every response and nothing varies.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from dartle.web.datastructures import Headers, MutableHeaders
from dartle.web.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CORSMiddleware"]

ALL_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
# Request headers a browser may send without asking (the Fetch standard's
# CORS-safelisted request headers). Content-Type is listed although browsers only
# preflight it for non-form values such as application/json: allowing it by default is
# what makes a JSON POST work without extra configuration, as users expect.
SAFELISTED_HEADERS = frozenset({"accept", "accept-language", "content-language", "content-type"})
# The token grammar of RFC 9110 (header names and methods must match it).
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# A serialised origin: scheme "://" host [":" port], nothing after it.
_ORIGIN = re.compile(r"^[a-z][a-z0-9+.\-]*://[^/?#\s]+$")


class CORSMiddleware:
    """Answer CORS preflights and add CORS headers to the app's responses.

    `allow_origins` is a list of origins (`"https://example.com"`), `"*"` for any, or a
    compiled regex that must match the whole origin; `allow_origin_regex` adds a regex
    (as a string) next to a list. `allow_methods` and `allow_headers` take `"*"` for
    any. With `allow_credentials=True` the wildcard is never sent: the request's own
    origin, method and headers are echoed instead (browsers ignore `*` for
    credentialed requests), and the opaque origin `null` is only accepted when listed.
    """

    def __init__(
        self,
        app: ASGIApp,
        allow_origins: Sequence[str] | str | re.Pattern[str] = (),
        allow_methods: Sequence[str] | str = ("GET",),
        allow_headers: Sequence[str] | str = (),
        allow_credentials: bool = False,
        allow_origin_regex: str | re.Pattern[str] | None = None,
        expose_headers: Sequence[str] = (),
        max_age: int = 600,
    ) -> None:
        self.app = app
        if isinstance(allow_origins, re.Pattern):
            if allow_origin_regex is not None:
                raise ValueError("give the origin regex either in allow_origins or as allow_origin_regex")
            allow_origin_regex, allow_origins = allow_origins, ()
        origins = [allow_origins] if isinstance(allow_origins, str) else list(allow_origins)
        self.allow_all_origins = "*" in origins
        self.allow_origins = frozenset(_check_origin(o) for o in origins if o != "*")
        self.allow_origin_regex = (
            re.compile(allow_origin_regex) if isinstance(allow_origin_regex, str) else allow_origin_regex
        )
        methods = [allow_methods] if isinstance(allow_methods, str) else list(allow_methods)
        self.allow_all_methods = "*" in methods
        self.allow_methods = tuple(_check_token(m, "method").upper() for m in methods if m != "*")
        headers = [allow_headers] if isinstance(allow_headers, str) else list(allow_headers)
        self.allow_all_headers = "*" in headers
        self.allow_headers = frozenset(
            {_check_token(h, "header").lower() for h in headers if h != "*"} | SAFELISTED_HEADERS
        )
        self.allow_credentials = allow_credentials
        self.max_age = max_age
        # Whether the answer depends on the request's Origin; see the module docstring.
        self.origin_dependent = allow_credentials or not self.allow_all_origins

        simple: dict[str, str] = {}
        if self.allow_all_origins and not allow_credentials:
            simple["access-control-allow-origin"] = "*"
        if allow_credentials:
            simple["access-control-allow-credentials"] = "true"
        if expose_headers:
            simple["access-control-expose-headers"] = ", ".join(
                _check_token(h, "header") for h in expose_headers
            )
        self._simple_headers = simple

        preflight: dict[str, str] = {"access-control-max-age": str(max_age)}
        if allow_credentials:
            preflight["access-control-allow-credentials"] = "true"
        elif self.allow_all_origins:
            preflight["access-control-allow-origin"] = "*"
        if not self.allow_all_methods:
            preflight["access-control-allow-methods"] = ", ".join(self.allow_methods)
        elif not allow_credentials:
            preflight["access-control-allow-methods"] = "*"
        if not self.allow_all_headers:
            preflight["access-control-allow-headers"] = ", ".join(sorted(self.allow_headers))
        elif not allow_credentials:
            preflight["access-control-allow-headers"] = "*"
        self._preflight_headers = preflight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is not None and scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(origin, headers, send)
            return
        if origin is None and not self.origin_dependent:
            # Same answer for everyone: send it always, so caches need not vary.
            await self.app(scope, receive, _AddHeaders(send, self._simple_headers, None))
            return
        allowed = origin is not None and self.is_allowed_origin(origin)
        await self.app(
            scope,
            receive,
            _AddHeaders(
                send,
                self._simple_headers if allowed else None,
                origin if allowed and self.origin_dependent else None,
                vary=self.origin_dependent,
            ),
        )

    def is_allowed_origin(self, origin: str) -> bool:
        """Whether `origin` (the request's `Origin` header) may read responses."""
        if origin == "null":
            # Opaque origins (sandboxed iframes, file: pages) share the one name "null",
            # so a wildcard with credentials must not let all of them in.
            return "null" in self.allow_origins or (self.allow_all_origins and not self.allow_credentials)
        if self.allow_all_origins:
            return True
        origin = origin.lower()
        if origin in self.allow_origins:
            return True
        return self.allow_origin_regex is not None and bool(self.allow_origin_regex.fullmatch(origin))

    async def _preflight(self, origin: str, headers: Headers, send: Send) -> None:
        method = headers["access-control-request-method"].strip()
        requested = [
            h.strip().lower()
            for line in headers.getlist("access-control-request-headers")
            for h in line.split(",")
            if h.strip()
        ]
        problems: list[str] = []
        if not self.is_allowed_origin(origin):
            problems.append(f"origin {origin!r}")
        if not self.allow_all_methods and method not in self.allow_methods:
            problems.append(f"method {method!r}")
        if not self.allow_all_headers:
            refused = [h for h in requested if h not in self.allow_headers]
            if refused:
                problems.append("headers " + ", ".join(repr(h) for h in refused))

        response = MutableHeaders(raw=[])
        if self.origin_dependent:
            response["vary"] = "Origin"
        if problems:
            body = ("Disallowed CORS " + "; ".join(problems)).encode()
            response["content-type"] = "text/plain; charset=utf-8"
            status = 400
        else:
            body = b""
            response.update(self._preflight_headers)
            if self.origin_dependent:
                response["access-control-allow-origin"] = origin
            # Browsers ignore "*" on credentialed requests, so echo what was asked
            # (and say that the answer depends on it).
            if self.allow_credentials and self.allow_all_methods:
                response["access-control-allow-methods"] = method
                response.add_vary_header("Access-Control-Request-Method")
            if self.allow_credentials and self.allow_all_headers:
                if requested:
                    response["access-control-allow-headers"] = ", ".join(requested)
                response.add_vary_header("Access-Control-Request-Headers")
            status = 200
        response["content-length"] = str(len(body))
        await send({"type": "http.response.start", "status": status, "headers": response.raw})
        await send({"type": "http.response.body", "body": body})


class _AddHeaders:
    """A `send` that adds CORS headers to the response start, then passes through."""

    __slots__ = ("echo_origin", "extra", "send", "vary")

    def __init__(
        self, send: Send, extra: dict[str, str] | None, echo_origin: str | None, vary: bool = False
    ) -> None:
        self.send = send
        self.extra = extra
        self.echo_origin = echo_origin
        self.vary = vary

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            # A copy: the app may reuse one header list for several responses.
            headers = MutableHeaders(raw=list(message.get("headers", ())))
            if self.extra:
                # The app's own CORS headers (if any) give way to the policy's.
                headers.update(self.extra)
            if self.echo_origin is not None:
                headers["access-control-allow-origin"] = self.echo_origin
            if self.vary:
                headers.add_vary_header("Origin")
            message = {**message, "headers": headers.raw}
        await self.send(message)


def _check_origin(origin: str) -> str:
    lowered = origin.lower()
    if lowered != "null" and not _ORIGIN.match(lowered):
        raise ValueError(
            f"CORS origin {origin!r} is not an origin like 'https://example.com'"
            " (scheme and host, optional port, no path or trailing slash)"
        )
    return lowered


def _check_token(value: str, what: str) -> str:
    if not _TOKEN.match(value):
        raise ValueError(f"{value!r} is not a valid HTTP {what} name")
    return value
