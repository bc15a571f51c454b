"""An app that probes how the server runs apps: tasks, contexts, cancellation, background work."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import anyio

seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="unset")
release_background = asyncio.Event()
background_done: list[str] = []


async def reply(send: Any, body: bytes, status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/timeout0":
        # A timeout that fires before the app's first await resumes: the cancellation
        # is aimed at the current task while the app has not yet been handed to it.
        try:
            async with asyncio.timeout(0):
                await asyncio.Event().wait()
        except TimeoutError:
            await reply(send, b"timed out")
            return
        await reply(send, b"not cancelled", 500)
    elif path == "/move-on":
        with anyio.move_on_after(0) as scope_:
            await anyio.sleep(30)
        await reply(send, b"moved on" if scope_.cancelled_caught else b"slept", 200)
    elif path == "/contextvar":
        before = seen.get()
        seen.set(scope["query_string"].decode() or "set")
        await reply(send, before.encode())
    elif path == "/task":
        task = asyncio.current_task()
        async with anyio.create_task_group() as group:
            group.start_soon(anyio.sleep, 0)
        await reply(send, b"task" if task is not None else b"no task")
    elif path == "/background":
        await reply(send, b"answered")
        await release_background.wait()  # goes on after its response is complete
        background_done.append("done")
    elif path == "/release":
        release_background.set()
        await asyncio.sleep(0)
        await reply(send, b"released")
    else:
        await reply(send, b"not found", 404)
