"""Responses that keep going: a streamed body and a server-sent events clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

from dartle.web import EventSourceResponse, Query, Router, ServerSentEvent, StreamingResponse

router = Router(tags=["live"])


@router.get("/stream")
async def stream(
    count: Annotated[int, Query(ge=1, le=100, description="How many lines")] = 20,
) -> StreamingResponse:
    """`count` lines, one every 100 ms: each leaves the server as it is produced."""

    async def lines() -> AsyncIterator[bytes]:
        for n in range(1, count + 1):
            yield f"line {n} of {count}\n".encode()
            if n < count:
                await asyncio.sleep(0.1)

    return StreamingResponse(lines(), media_type="text/plain")


@router.get("/clock")
async def clock() -> EventSourceResponse:
    """The server's time every second, as server-sent events (open it with EventSource)."""

    async def ticks() -> AsyncIterator[ServerSentEvent]:
        n = 0
        while True:
            n += 1
            yield ServerSentEvent(time.strftime("%H:%M:%S"), id=n)
            await asyncio.sleep(1)

    return EventSourceResponse(ticks(), ping=15)
