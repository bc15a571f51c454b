"""Apps for the operations tests (workers, recycling, health checks), in plain ASGI.

`app` answers with its worker's pid so a test can tell the workers apart:
  /pid            the pid
  /slow?seconds=S wait S seconds (without blocking the loop), then the pid
  /grow?mb=N      keep N MiB more of resident memory, then the pid
  /block?seconds=S  block the event loop for S seconds (what a broken app does)
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_hoard: list[bytearray] = []


async def _lifespan(receive: Receive, send: Send, after_startup: Callable[[], None] | None = None) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
            if after_startup is not None:
                after_startup()
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _answer(send: Send, body: bytes, status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    path = scope["path"]
    if path == "/slow":
        print(f"slow request started in [{os.getpid()}]", flush=True)
        await asyncio.sleep(float(query.get("seconds", "1")))
    elif path == "/grow":
        chunk = bytearray(b"\x01") * (int(query["mb"]) * 1024 * 1024)  # touched, so resident
        _hoard.append(chunk)
    elif path == "/block":
        time.sleep(float(query.get("seconds", "1")))
    await _answer(send, str(os.getpid()).encode())


async def crashing(scope: Scope, receive: Receive, send: Send) -> None:
    """Starts, serves, and dies 0.3 s later: a worker the supervisor must not restart in a tight loop."""
    if scope["type"] == "lifespan":
        loop = asyncio.get_running_loop()
        await _lifespan(receive, send, lambda: loop.call_later(0.3, os._exit, 7))
        return
    await _answer(send, b"still here")
