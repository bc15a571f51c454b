"""`@app.middleware("http")`: middleware written as `async def f(request, call_next)`.

Unlike Starlette's BaseHTTPMiddleware, nothing here runs the endpoint in another task
or pipes the body through a memory stream. The functions run innermost in the stack,
right around the router, and `call_next(request)` returns the route's own Response
object before it is sent. So the endpoint runs in the middleware's task (context
variables set on either side are seen by the other), a streaming response is still
the handler's iterator when it is finally sent, and background tasks run after it as
usual. All functions and the handler share one Request, so a body read by a
middleware is still there for the handler.

Only a mounted foreign ASGI app (which has no Response object to give) is run in a
helper task, its messages relayed as they come: see `relay_response`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from dartle.web.errors import handle_exception
from dartle.web.requests import Request
from dartle.web.responses import Response
from dartle.web.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CallNext",
    "FunctionMiddleware",
    "HTTPMiddleware",
    "check_middleware_function",
    "relay_response",
]

CallNext = Callable[[Request], Awaitable[Response]]
HTTPMiddleware = Callable[[Request, CallNext], Awaitable[Response]]


class _Link:
    """`call_next` for one middleware function: calls it with the rest of the chain."""

    __slots__ = ("func", "next")

    def __init__(self, func: HTTPMiddleware, next: CallNext) -> None:
        self.func = func
        self.next = next

    async def __call__(self, request: Request) -> Response:
        response = await self.func(request, self.next)
        if not isinstance(response, Response):
            name = getattr(self.func, "__name__", repr(self.func))
            raise TypeError(f"middleware {name} returned {response!r}, not a Response")
        return response


class FunctionMiddleware:
    """An ASGI app running middleware functions around `router.respond`.

    The last function registered is the outermost, as with `add_middleware`.
    """

    def __init__(self, router: Any, functions: Sequence[HTTPMiddleware]) -> None:
        self.router = router
        chain: CallNext = router.respond
        for func in functions:
            chain = _Link(func, chain)
        self.chain = chain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.router(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await self.chain(request)
        except Exception as exc:
            response, server_error = await handle_exception(request, exc)
            await response(scope, receive, send)
            if server_error:
                raise
            return
        await response(scope, receive, send)


class _RelayedResponse(Response):
    """The answer of an ASGI app running in a helper task, relayed message by message."""

    def __init__(self, start: Message, queue: asyncio.Queue[Message], task: asyncio.Task[None]) -> None:
        self.status_code = start["status"]
        self.background = None
        self.body = b""
        self.raw_headers = [(bytes(k), bytes(v)) for k, v in start.get("headers", [])]
        self._headers = None
        self._start = start
        self._queue = queue
        self._task = task

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({**self._start, "headers": self.raw_headers})
        try:
            while True:
                message = await _next_message(self._queue, self._task)
                if message is None:
                    break
                await send(message)
                if message["type"] == "http.response.body" and not message.get("more_body"):
                    break
        finally:
            if not self._task.done():
                self._task.cancel()
            await asyncio.wait((self._task,))
        if not self._task.cancelled() and self._task.exception() is not None:
            raise self._task.exception()  # type: ignore[misc]


async def _next_message(queue: asyncio.Queue[Message], task: asyncio.Task[None]) -> Message | None:
    if not queue.empty():
        return queue.get_nowait()
    getter = asyncio.ensure_future(queue.get())
    await asyncio.wait((getter, task), return_when=asyncio.FIRST_COMPLETED)
    if getter.done():
        return getter.result()
    getter.cancel()
    exc = task.exception()
    if exc is not None:
        raise exc
    return None


async def relay_response(app: ASGIApp, request: Request) -> Response:
    """Run `app` for `request` in a helper task; return its answer as a Response.

    Returns once the app has sent `http.response.start`; the body follows when the
    Response is sent. The queue holds one message, so a slow client slows the app.
    """
    queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=1)
    task = asyncio.ensure_future(app(request.scope, request.downstream_receive(), queue.put))
    first = await _next_message(queue, task)
    if first is None or first["type"] != "http.response.start":
        task.cancel()
        raise RuntimeError(f"the mounted app sent {first!r} instead of a response start")
    return _RelayedResponse(first, queue, task)


def check_middleware_function(func: Callable[..., Any]) -> None:
    """Refuse anything but `async def f(request, call_next)`."""
    if not asyncio.iscoroutinefunction(func):
        raise TypeError("an HTTP middleware function must be 'async def f(request, call_next)'")
