"""A small app around `Groups`, driven over a real WebSocket by tests/pubsub/test_groups.py.

The socket takes JSON commands: {"join": g}, {"leave": g} (answered with
{"groups": [...]}, once done) and {"send": g, "text": t}. What the socket's groups
receive arrives as the plain text that was sent. POST /flood publishes `count`
messages of `size` bytes to a group, each starting with its zero-padded number.

PUBSUB_TEST_URL picks the bus (default memory://), PUBSUB_TEST_MAX_QUEUE the
subscribers' queue limit.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from dartle import App, Request, WebSocket
from dartle.web.pubsub import Broadcast, Groups

broadcast = Broadcast(
    os.environ.get("PUBSUB_TEST_URL", "memory://"),
    max_queue=int(os.environ.get("PUBSUB_TEST_MAX_QUEUE", "1000")),
)
groups = Groups(broadcast)


@asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
    async with broadcast:
        yield {}


app = App(lifespan=lifespan)


@app.websocket("/ws")
async def member_socket(websocket: WebSocket) -> None:
    await websocket.accept()
    async with groups.member(websocket) as member:
        async for command in websocket.iter_json():
            if "join" in command:
                await member.join(command["join"])
            elif "leave" in command:
                await member.leave(command["leave"])
            elif "send" in command:
                await member.send(command["send"], command["text"])
                continue
            await websocket.send_json({"groups": sorted(member.groups)})


@app.post("/flood")
async def flood(request: Request) -> dict[str, int]:
    group = request.query_params["group"]
    count = int(request.query_params["count"])
    size = int(request.query_params["size"])
    for n in range(count):
        await groups.send(group, f"{n:06d}".ljust(size, "x"))
    return {"published": count}


@app.get("/pid")
async def pid(request: Request) -> dict[str, int]:
    return {"pid": os.getpid()}
