"""The showcase app `make demo` serves: the dartle framework on the dartle server.

    dartle run examples.demo:app     # http://127.0.0.1:8000

The chat of examples/chat.py is mounted at /chat/. Its messages go through memory://
(this process only) unless CHAT_REDIS_URL names a Redis, which lets several workers
share the rooms:

    CHAT_REDIS_URL=redis://127.0.0.1:6379/0 dartle run examples.demo:app --workers 2
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from dartle import (
    App,
    EventSourceResponse,
    HTMLResponse,
    HTTPException,
    Request,
    ServerSentEvent,
    StreamingResponse,
)
from examples import chat

log = logging.getLogger("dartle.error")

PAGE = """<!doctype html>
<meta charset="utf-8"><title>dartle demo</title>
<style>body{font:16px system-ui;max-width:46rem;margin:2rem auto;padding:0 1rem}
code{background:#f3f3f3;padding:.1rem .3rem}</style>
<h1>dartle</h1>
<p>The dartle framework, served by the dartle server.</p>
<ul>
<li><a href="/items">/items</a> - a small JSON API (GET, POST /items, GET /items/{id})</li>
<li><a href="/stream">/stream</a> - a streamed response, a line every 100 ms</li>
<li><a href="/clock">/clock</a> - server-sent events: the time every second</li>
<li><a href="/chat/">/chat/</a> - a chat over WebSockets; open it in two tabs
(several workers share it through Redis: see docs/scaling.md)</li>
</ul>
<p>Clock: <code id="clock">...</code></p>
<script>
new EventSource("/clock").onmessage = (e) => document.getElementById("clock").textContent = e.data;
</script>
"""


@asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[dict[str, object]]:
    # Included routes have no lifespan of their own: the chat's bus is connected here.
    async with chat.broadcast:
        log.info(
            "demo: open http://127.0.0.1:8000/ (items API at /items, SSE at /clock, "
            "chat at /chat/ through %s)",
            chat.broadcast.description,
        )
        yield {"items": {1: {"id": 1, "name": "first item"}}}


app = App(lifespan=lifespan)
app.include_router(chat.router)


@app.get("/")
async def home(request: Request) -> HTMLResponse:
    return HTMLResponse(PAGE)


@app.get("/items")
async def list_items(request: Request) -> list[dict[str, object]]:
    return list(request.state.items.values())


@app.get("/items/{item_id:int}")
async def get_item(request: Request) -> dict[str, object]:
    item = request.state.items.get(request.path_params["item_id"])
    if item is None:
        raise HTTPException(404, "no such item")
    return dict(item)


@app.post("/items")
async def add_item(request: Request) -> dict[str, object]:
    body = await request.json()
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        raise HTTPException(422, "send a JSON object with a string 'name'")
    items = request.state.items
    item = {"id": max(items, default=0) + 1, "name": body["name"]}
    items[item["id"]] = item
    return item


@app.get("/stream")
async def stream(request: Request) -> StreamingResponse:
    async def lines() -> AsyncIterator[bytes]:
        for n in range(1, 21):
            yield f"line {n}\n".encode()
            await asyncio.sleep(0.1)

    return StreamingResponse(lines(), media_type="text/plain")


@app.get("/clock")
async def clock(request: Request) -> EventSourceResponse:
    async def ticks() -> AsyncIterator[ServerSentEvent]:
        while True:
            yield ServerSentEvent(data=time.strftime("%H:%M:%S"))
            await asyncio.sleep(1)

    return EventSourceResponse(ticks())
