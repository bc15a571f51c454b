"""The app tests/docs/test_nginx.py serves behind nginx: it reports what it was told."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from dartle.web import App, Request, StreamingResponse, WebSocket

app = App()
_released = asyncio.Event()


@app.get("/echo")
async def echo(request: Request) -> dict[str, object]:
    """What a request through the proxy looks like to the app."""
    return {
        "scheme": request.url.scheme,
        "url": str(request.url),
        "client": request.client.host if request.client else None,
        "host": request.headers.get("host"),
        "x_forwarded_for": request.headers.get("x-forwarded-for"),
        "http_version": request.scope["http_version"],
    }


@app.get("/held")
async def held() -> StreamingResponse:
    """One line now, the next once /release is called: shows whether the proxy buffers."""

    async def lines() -> AsyncIterator[bytes]:
        yield b"first\n"
        await _released.wait()
        _released.clear()
        yield b"last\n"

    return StreamingResponse(lines(), media_type="text/plain")


@app.post("/release")
async def release() -> dict[str, bool]:
    _released.set()
    return {"released": True}


@app.websocket("/ws")
async def ws(websocket: WebSocket) -> None:
    await websocket.accept()
    client = websocket.client.host if websocket.client else None
    await websocket.send_json({"scheme": websocket.url.scheme, "client": client})
    async for text in websocket.iter_text():
        await websocket.send_text(text)
