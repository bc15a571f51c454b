"""Send clients that came over plain HTTP (or WS) to the same URL over HTTPS (or WSS)."""

from __future__ import annotations

from dartle.web.datastructures import URL
from dartle.web.middleware._websocket import refuse_websocket
from dartle.web.responses import RedirectResponse
from dartle.web.types import ASGIApp, Receive, Scope, Send

__all__ = ["HTTPSRedirectMiddleware"]

_SECURE = {"http": "https", "ws": "wss"}
_REDIRECT_STATUSES = frozenset({301, 302, 307, 308})


class HTTPSRedirectMiddleware:
    """Redirect `http://` requests to `https://` and `ws://` handshakes to `wss://`.

    The redirect keeps the path and query. `status_code` is 307 by default (temporary,
    method and body kept); 308 makes it permanent, which browsers cache. The port 80
    is dropped; any other port is kept unless `https_port` says where TLS listens (443
    is then left out of the URL). Behind a TLS-terminating proxy, run the server with
    proxy headers trusted so that `scope["scheme"]` is already `https`, or every
    request would loop.
    """

    def __init__(self, app: ASGIApp, status_code: int = 307, https_port: int | None = None) -> None:
        if status_code not in _REDIRECT_STATUSES:
            raise ValueError(f"status_code must be one of {sorted(_REDIRECT_STATUSES)}")
        self.app = app
        self.status_code = status_code
        self.https_port = https_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scheme = scope.get("scheme", "http" if scope["type"] == "http" else "ws")
        if scope["type"] not in ("http", "websocket") or scheme not in _SECURE:
            await self.app(scope, receive, send)
            return
        url = URL(scope=scope)
        port = self.https_port if self.https_port is not None else url.port
        if port in (80, 443):
            port = None
        hostname = url.hostname or ""
        if ":" in hostname:  # an IPv6 literal, which urlsplit returns without brackets
            hostname = f"[{hostname}]"
        netloc = hostname if port is None else f"{hostname}:{port}"
        target = url.replace(scheme=_SECURE[scheme], netloc=netloc)
        response = RedirectResponse(target, status_code=self.status_code)
        if scope["type"] == "websocket":
            await refuse_websocket(scope, receive, send, response)
        else:
            await response(scope, receive, send)
