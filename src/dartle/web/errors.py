"""From an exception to an error response: handler lookup, defaults, the debug page.

Handlers are registered on the App by exception class or by status code. An
`HTTPException` (or any class with a registered handler) is *handled*: its response is
sent and that is the end of it. Anything else is a server error: the 500 response
(a registered 500/Exception handler, the debug page in debug mode, or a plain
"Internal Server Error") is sent, then the exception is re-raised so that the server
logs it.
"""

from __future__ import annotations

import html
import traceback
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from dartle.asgi.concurrency import is_async_callable, run_sync
from dartle.web.exceptions import ClientDisconnect, HTTPException
from dartle.web.requests import HTTPConnection, Request
from dartle.web.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from dartle.web.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "ExceptionHandler",
    "ServerErrorMiddleware",
    "handle_exception",
    "http_exception_response",
]

ExceptionHandler = Callable[[Any, Exception], "Response | Awaitable[Response] | None"]
Handlers = Mapping["int | type[BaseException]", ExceptionHandler]

# Status codes whose responses must not carry a body (RFC 9110 section 15).
_BODYLESS = frozenset({204, 304})


def http_exception_response(exc: HTTPException) -> Response:
    """The default answer to an HTTPException: JSON `{"detail": ...}` with its headers."""
    if exc.status_code in _BODYLESS or exc.status_code < 200:
        return Response(status_code=exc.status_code, headers=exc.headers)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


class _NoResponse(Response):
    """Sends nothing: the answer to a request whose client has gone."""

    def __init__(self) -> None:
        super().__init__(status_code=400)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        return None


_NO_RESPONSE = _NoResponse()


def _find_handler(handlers: Handlers, exc: Exception) -> ExceptionHandler | None:
    if isinstance(exc, HTTPException):
        handler = handlers.get(exc.status_code)
        if handler is not None:
            return handler
    for cls in type(exc).__mro__:
        if cls is Exception:
            # Exception itself means "any server error": that is the 500 path.
            return None
        handler = handlers.get(cls)
        if handler is not None:
            return handler
    return None


async def _call(handler: ExceptionHandler, conn: Any, exc: Exception) -> Any:
    if is_async_callable(handler):
        return await handler(conn, exc)  # type: ignore[misc]
    return await run_sync(handler, conn, exc)


async def handle_exception(conn: HTTPConnection, exc: Exception) -> tuple[Response, bool]:
    """The response for `exc`, and whether it was a server error (to be re-raised)."""
    if isinstance(exc, ClientDisconnect):
        # Nobody is left to answer, and a client leaving is not a server error.
        return _NO_RESPONSE, False
    app = conn.scope.get("app")
    handlers: Handlers = getattr(app, "exception_handlers", None) or {}
    handler = _find_handler(handlers, exc)
    if handler is not None:
        return await _call(handler, conn, exc), False
    if isinstance(exc, HTTPException):
        return http_exception_response(exc), False
    if getattr(app, "debug", False):
        return debug_response(conn, exc), True
    handler = handlers.get(500) or handlers.get(Exception)
    if handler is not None:
        return await _call(handler, conn, exc), True
    return PlainTextResponse("Internal Server Error", status_code=500), True


# ---------------------------------------------------------------------------
# Debug page (debug mode only: a traceback is never shown otherwise)
# ---------------------------------------------------------------------------

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>500 {title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
h1 {{ font-size: 1.4em; color: #b00; }}
.frame {{ margin: 1em 0; border: 1px solid #ddd; border-radius: 4px; }}
.where {{ background: #f4f4f4; padding: .4em .8em; font-family: monospace; }}
pre {{ margin: 0; padding: .4em .8em; overflow-x: auto; }}
.line {{ background: #fde8e8; }}
</style></head>
<body><h1>{title}</h1><p>{method} {path}</p>{frames}
<p><small>This page is shown because the app runs with debug=True.</small></p>
</body></html>
"""


def _frames_html(exc: BaseException) -> str:
    parts = []
    for frame in traceback.extract_tb(exc.__traceback__):
        where = f"{frame.filename}, line {frame.lineno}, in {frame.name}"
        code = html.escape(frame.line or "")
        parts.append(
            f'<div class="frame"><div class="where">{html.escape(where)}</div>'
            f'<pre class="line">{code}</pre></div>'
        )
    return "\n".join(parts)


def debug_response(conn: HTTPConnection, exc: Exception) -> Response:
    """A 500 with the traceback: HTML for browsers, plain text for other clients."""
    accept = conn.headers.get("accept", "")
    if "text/html" in accept:
        title = html.escape(f"{type(exc).__name__}: {exc}")
        page = _PAGE.format(
            title=title,
            method=html.escape(conn.scope.get("method", "")),
            path=html.escape(conn.scope.get("path", "")),
            frames=_frames_html(exc),
        )
        return HTMLResponse(page, status_code=500)
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return PlainTextResponse(text, status_code=500)


# ---------------------------------------------------------------------------
# Outermost guard
# ---------------------------------------------------------------------------


class _TrackedSend:
    """Forwards to `send`, remembering whether the response has started."""

    __slots__ = ("send", "started")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        self.started = True
        await self.send(message)


class ServerErrorMiddleware:
    """Turns an exception that escaped everything else into an error response.

    Routes handle their handlers' exceptions themselves; this layer exists for the
    code around them (ASGI middleware, mounted apps) and is only installed when
    there is such code, so a bare app pays nothing for it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = _TrackedSend(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if tracked.started:
                raise
            response, server_error = await handle_exception(Request(scope, receive, send), exc)
            await response(scope, receive, send)
            if server_error:
                raise
