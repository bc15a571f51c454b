"""Every middleware stacked around a dartle StreamingResponse with a background task.

GET /work?id=X        sets a context variable, streams two chunks, and runs a background
                      task; the outermost layer records what each side saw
GET /results?id=X     waits until request X is completely done, then answers the record

The record shows whether the app saw the outer layer's context variable, whether the
outer layer saw the app's after the app returned (true only when no middleware moved
the app into another task), and whether the background task ran, in the app's context.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextvars import ContextVar
from typing import Any
from urllib.parse import parse_qsl

from dartle.web.background import BackgroundTask
from dartle.web.middleware import (
    CORSMiddleware,
    GZipMiddleware,
    SessionMiddleware,
    TrustedHostMiddleware,
)
from dartle.web.responses import JSONResponse, StreamingResponse

outer_var: ContextVar[str] = ContextVar("outer_var", default="unset")
inner_var: ContextVar[str] = ContextVar("inner_var", default="unset")
records: dict[str, dict[str, Any]] = {}
done: dict[str, asyncio.Event] = {}


def _done(key: str) -> asyncio.Event:
    return done.setdefault(key, asyncio.Event())


async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
    key = dict(parse_qsl(scope["query_string"].decode()))["id"]
    record = records.setdefault(key, {})
    record["outer_seen_by_app"] = outer_var.get()
    record["session_type"] = type(scope.get("session")).__name__
    inner_var.set("inner-" + key)

    async def background() -> None:
        record["background_saw"] = inner_var.get()

    async def chunks() -> AsyncIterator[bytes]:
        yield b"chunk one " * 100
        yield b"chunk two " * 100

    response = StreamingResponse(chunks(), media_type="text/plain", background=BackgroundTask(background))
    await response(scope, receive, send)


class Recorder:
    """The outermost layer: sets a context variable, and serves the records."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        key = dict(parse_qsl(scope["query_string"].decode()))["id"]
        if scope["path"] == "/results":
            await _done(key).wait()
            await JSONResponse(records.pop(key))(scope, receive, send)
            return
        outer_var.set("outer")
        await self.app(scope, receive, send)
        records[key]["app_var_seen_after"] = inner_var.get()
        _done(key).set()


app = Recorder(
    TrustedHostMiddleware(
        CORSMiddleware(
            GZipMiddleware(SessionMiddleware(inner, secret_key="k"), minimum_size=10),
            allow_origins=["https://good.example"],
        ),
        allowed_hosts=["127.0.0.1"],
    )
)
