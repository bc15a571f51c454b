"""Apps for `dartle check`: one that follows every rule, and ones that each break one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from dartle import App, WebSocket

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@asynccontextmanager
async def _lifespan(app: App) -> AsyncIterator[dict[str, object]]:
    yield {"greeting": "hello"}


good = App(lifespan=_lifespan)


@good.get("/")
async def home() -> dict[str, str]:
    return {"hello": "world"}


@good.websocket("/rooms/{room}")
async def room(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(f"welcome to {websocket.path_params['room']}")
    message = await websocket.receive()
    assert message["type"] == "websocket.disconnect"


async def _http_only(
    scope: Scope, receive: Receive, send: Send, answer: Callable[[Send], Awaitable[None]]
) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rpartition(".")[2]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    await answer(send)


async def str_body(scope: Scope, receive: Receive, send: Send) -> None:
    """Sends its body as str, not bytes."""
    async def answer(send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": "text, not bytes"})
    await _http_only(scope, receive, send, answer)


async def body_first(scope: Scope, receive: Receive, send: Send) -> None:
    """Sends a body before http.response.start."""
    async def answer(send: Send) -> None:
        await send({"type": "http.response.body", "body": b"too early"})
    await _http_only(scope, receive, send, answer)


async def raises(scope: Scope, receive: Receive, send: Send) -> None:
    """Raises while handling the request."""
    async def answer(send: Send) -> None:
        raise LookupError("no such thing (marker-3310)")
    await _http_only(scope, receive, send, answer)


async def silent(scope: Scope, receive: Receive, send: Send) -> None:
    """Returns without a response."""
    async def answer(send: Send) -> None:
        return
    await _http_only(scope, receive, send, answer)


async def hangs(scope: Scope, receive: Receive, send: Send) -> None:
    """Never answers the request."""
    async def answer(send: Send) -> None:
        await asyncio.Event().wait()
    await _http_only(scope, receive, send, answer)


rude_ws = App()


@rude_ws.get("/")
async def rude_home() -> str:
    return "fine here"


@rude_ws.websocket("/ws")
async def rude(websocket: WebSocket) -> None:
    await websocket.send_text("before accepting")


async def raw_ws(scope: Scope, receive: Receive, send: Send) -> None:
    """A plain ASGI app (no routes to find) whose WebSocket side sends before accepting."""
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.send", "text": "before accepting"})
        return
    async def answer(send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
    await _http_only(scope, receive, send, answer)
