"""Small ASGI apps exercising the lifespan protocol's edge cases (plain ASGI, no dartle)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

FAIL_MESSAGE = "cannot reach the database (marker-7731)"


async def _answer_state(scope: Scope, send: Send) -> None:
    body = json.dumps({"state": scope.get("state")}, default=repr).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def failing_startup(scope: Scope, receive: Receive, send: Send) -> None:
    """Reports lifespan.startup.failed with a message the server must log."""
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": FAIL_MESSAGE})
        return
    await _answer_state(scope, send)


async def raising_startup(scope: Scope, receive: Receive, send: Send) -> None:
    """Raises while handling lifespan.startup (after having received it)."""
    if scope["type"] == "lifespan":
        await receive()
        raise RuntimeError("startup exploded (marker-5120)")
    await _answer_state(scope, send)


async def no_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    """An app that does not support lifespan: it raises on any non-http scope."""
    if scope["type"] != "http":
        raise RuntimeError(f"unsupported scope type {scope['type']}")
    await _answer_state(scope, send)


async def slow_startup(scope: Scope, receive: Receive, send: Send) -> None:
    """Takes a while to start; requests must only be served once it is ready."""
    if scope["type"] == "lifespan":
        await receive()
        await asyncio.sleep(0.3)
        scope["state"]["ready"] = True
        print("slow_startup: ready", flush=True)
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    await _answer_state(scope, send)


async def failing_shutdown(scope: Scope, receive: Receive, send: Send) -> None:
    """Starts fine, reports lifespan.shutdown.failed."""
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.failed", "message": "flush failed (marker-8842)"})
        return
    await _answer_state(scope, send)
