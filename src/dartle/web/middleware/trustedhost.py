"""Refuse requests whose Host header names a host this app does not serve.

Without this check an app believes whatever Host a client sends, and builds absolute
URLs (redirects, password-reset links, `url_for`) that point wherever the client
wants: the Host header attack.
"""

from __future__ import annotations

from collections.abc import Sequence

from dartle.web.datastructures import URL, Headers
from dartle.web.middleware._websocket import refuse_websocket
from dartle.web.responses import PlainTextResponse, RedirectResponse, Response
from dartle.web.types import ASGIApp, Receive, Scope, Send

__all__ = ["TrustedHostMiddleware", "host_without_port"]


class TrustedHostMiddleware:
    """Answer 400 "Invalid host header" unless the Host is in `allowed_hosts`.

    Patterns are exact names (`"example.com"`, `"127.0.0.1"`, `"[::1]"`), wildcards
    for subdomains (`"*.example.com"` matches `api.example.com` but not `example.com`
    itself) or `"*"` for any. Names compare without the port and case-insensitively.
    With `www_redirect` (the default), a request for `example.com` is redirected to
    `www.example.com` when only the latter is listed. WebSocket handshakes with a
    bad Host are refused too.
    """

    def __init__(
        self,
        app: ASGIApp,
        allowed_hosts: Sequence[str] = ("*",),
        www_redirect: bool = True,
    ) -> None:
        if isinstance(allowed_hosts, str):
            raise TypeError("allowed_hosts must be a list of host patterns, not one string")
        self.app = app
        self.allow_any = "*" in allowed_hosts
        exact: set[str] = set()
        suffixes: list[str] = []
        for pattern in allowed_hosts:
            if pattern == "*":
                continue
            if "*" in pattern[1:] or (pattern.startswith("*") and not pattern.startswith("*.")):
                raise ValueError(
                    f"host pattern {pattern!r}: a wildcard may only be '*' or lead as '*.domain'"
                )
            pattern = pattern.lower().rstrip(".")
            if pattern.startswith("*."):
                suffixes.append(pattern[1:])  # keep the dot: "*.a.com" -> ".a.com"
            else:
                exact.add(pattern)
        self.exact_hosts = frozenset(exact)
        self.suffixes = tuple(suffixes)
        self.www_redirect = www_redirect

    def is_allowed(self, host: str) -> bool:
        """Whether `host` (no port, lowercase) matches one of the allowed patterns."""
        return (
            self.allow_any
            or host in self.exact_hosts
            or any(host.endswith(s) and len(host) > len(s) for s in self.suffixes)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.allow_any:
            await self.app(scope, receive, send)
            return
        host_header = Headers(scope=scope).get("host")
        host = host_without_port(host_header) if host_header is not None else ""
        if host and self.is_allowed(host):
            await self.app(scope, receive, send)
            return
        response: Response
        if host and self.www_redirect and ("www." + host) in self.exact_hosts:
            url = URL(scope=scope)
            netloc = "www." + url.netloc
            response = RedirectResponse(url.replace(netloc=netloc), status_code=301)
        else:
            response = PlainTextResponse("Invalid host header", status_code=400)
        if scope["type"] == "websocket":
            await refuse_websocket(scope, receive, send, response)
        else:
            await response(scope, receive, send)


def host_without_port(host: str) -> str:
    """The host part of a Host header value, lowercase, without port or final dot.

    An IPv6 literal keeps its brackets (`"[::1]:8000"` -> `"[::1]"`); a value that is not
    a plausible host (empty, spaces, a bracket left open) gives `""`.
    """
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        if end == -1:
            return ""
        name, rest = host[: end + 1], host[end + 1 :]
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            return ""
    else:
        name, colon, port = host.partition(":")
        if colon and not port.isdigit():
            return ""
    name = name.rstrip(".")
    if not name or any(c.isspace() or c in "/\\@?#" for c in name):
        return ""
    return name
