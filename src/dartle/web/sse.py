"""Server-sent events (the `text/event-stream` format of the HTML standard).

An `EventSourceResponse` streams events from an iterator and, while the iterator is
idle, sends a comment line every `ping` seconds so proxies and browsers keep the
connection open. It stops when the client disconnects, as every streaming response does.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from typing import Any

from pydantic_core import to_json

from dartle.asgi.concurrency import iterate_in_threadpool
from dartle.web.background import BackgroundTask
from dartle.web.responses import StreamingResponse

__all__ = ["EventSourceResponse", "ServerSentEvent"]

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class ServerSentEvent:
    """One event: `data` (str as is, anything else as JSON), `event`, `id`, `retry`.

    A `comment` alone makes a comment line, which clients ignore.
    """

    __slots__ = ("comment", "data", "event", "id", "retry")

    def __init__(
        self,
        data: Any = None,
        *,
        event: str | None = None,
        id: str | int | None = None,
        retry: int | None = None,
        comment: str | None = None,
    ) -> None:
        for field, value in (("event", event), ("id", id)):
            if value is not None and _LINE_BREAK.search(str(value)):
                raise ValueError(f"an SSE {field} cannot contain a line break")
        if id is not None and "\0" in str(id):
            raise ValueError("an SSE id cannot contain NUL")
        if retry is not None and (not isinstance(retry, int) or retry < 0):
            raise ValueError("an SSE retry must be a non-negative int (milliseconds)")
        self.data = data
        self.event = event
        self.id = id
        self.retry = retry
        self.comment = comment

    def encode(self) -> bytes:
        """The event as stream bytes, ending with the blank line that dispatches it."""
        lines: list[str] = []
        if self.comment is not None:
            lines.extend(": " + line for line in _LINE_BREAK.split(self.comment))
        if self.id is not None:
            lines.append(f"id: {self.id}")
        if self.event is not None:
            lines.append(f"event: {self.event}")
        if self.retry is not None:
            lines.append(f"retry: {self.retry}")
        if self.data is not None:
            data = self.data if isinstance(self.data, str) else to_json(self.data).decode()
            lines.extend("data: " + line for line in _LINE_BREAK.split(data))
        return ("\n".join(lines) + "\n\n").encode("utf-8")


def _encode(item: Any) -> bytes:
    if isinstance(item, ServerSentEvent):
        return item.encode()
    if isinstance(item, Mapping):
        return ServerSentEvent(**item).encode()
    if isinstance(item, bytes):
        return item  # already formatted by the caller
    return ServerSentEvent(item).encode()


PING = b": ping\n\n"


async def _events(source: AsyncIterable[Any], ping: float | None) -> AsyncIterator[bytes]:
    iterator = source.__aiter__()
    pending: asyncio.Future[Any] | None = None
    try:
        if ping is None:
            async for item in iterator:
                yield _encode(item)
            return
        while True:
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait((pending,), timeout=ping)
            if not done:
                yield PING
                continue
            finished, pending = pending, None
            try:
                item = finished.result()
            except StopAsyncIteration:
                return
            yield _encode(item)
    finally:
        if pending is not None:
            pending.cancel()
            await asyncio.wait((pending,))
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


class EventSourceResponse(StreamingResponse):
    """Stream server-sent events from `content`.

    Items may be `ServerSentEvent`s, dicts of their fields, strings (data lines) or
    other values (JSON data). `ping` is the idle interval in seconds between
    keep-alive comments (None turns them off).
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        content: AsyncIterable[Any] | Iterable[Any],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        background: BackgroundTask | None = None,
        ping: float | None = 15.0,
    ) -> None:
        source = content if isinstance(content, AsyncIterable) else iterate_in_threadpool(content)
        merged = {"cache-control": "no-store", "x-accel-buffering": "no"}
        if headers:
            merged.update({k.lower(): v for k, v in headers.items()})
        super().__init__(
            _events(source, ping), status_code=status_code, headers=merged, background=background
        )
