"""One request's ASGI state machine, shared by every framing protocol.

A `Cycle` owns `receive` and `send` for one HTTP request. It alone knows the ASGI rules
(event order, `more_body`, trailers, `http.disconnect`, errors -> 500). The framing
protocol (HTTP/1.1 now, HTTP/2 later) feeds it the request body and moves the bytes it
asks for through the small `Framing` interface below; no I/O happens here.

Response states, in order::

    START -> HELD -> STREAMING -> TRAILERS -> DONE
      |        \\__________________/____________^
      |  (start)   (body, more)   (final body, trailers expected)
      +-- http.response.start moves START to HELD; the head is held until the first
          body message so that a small response leaves in one write.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable
from typing import Any, Protocol

from dartle.asgi.types import ASGIApp, Message, Scope
from dartle.server.errors import ClientDisconnected

logger = logging.getLogger("dartle.error")

START, HELD, STREAMING, TRAILERS, DONE = range(5)
# Cycle.flags: facts from the request head that change how the response is written.
EXPECT_100 = 1  # the client waits for "100 Continue" before sending the body
TE_TRAILERS = 2  # the client accepts trailer fields (TE: trailers)
HEAD_REQUEST = 4  # a HEAD request: the response has a head only (set by HTTP/1)
HTTP_10 = 8  # an HTTP/1.0 request: no chunked coding, keep-alive only if asked (HTTP/1)
STATE_NAMES = ("START", "HELD", "STREAMING", "TRAILERS", "DONE")

_DISCONNECT: dict[str, Any] = {"type": "http.disconnect"}


class Framing(Protocol):
    """What a cycle needs from the protocol carrying it (one HTTP/1 connection, one h2 stream)."""

    loop: asyncio.AbstractEventLoop
    write_paused: bool

    def write_head(self, cycle: Cycle, status: int, headers: Any, body: bytes, end: bool) -> None:
        """Send the response head with the first body chunk; `end` completes the response."""

    def write_body(self, cycle: Cycle, body: bytes, end: bool) -> None:
        """Send a body chunk; `end` completes the response unless trailers follow."""

    def write_trailers(self, cycle: Cycle, headers: Any, end: bool) -> None:
        """Send trailer fields; `end` completes the response."""

    def write_continue(self, cycle: Cycle) -> None:
        """Send `100 Continue` (the app is about to read a body the client holds back)."""

    def write_error(self, cycle: Cycle, status: int, message: str) -> None:
        """Answer with a canned error response and end the exchange."""

    def abort(self, cycle: Cycle) -> None:
        """Tear the exchange down without a proper end (the head is already out)."""

    def body_consumed(self, cycle: Cycle) -> None:
        """The app took buffered request body bytes; reading may resume."""

    def drain(self) -> Awaitable[None]:
        """Wait until the transport's write buffer is below its mark."""

    def send_file(self, cycle: Cycle, path: str) -> Awaitable[None]:
        """Send a whole file as the response body (http.response.pathsend)."""

    def app_done(self, cycle: Cycle) -> None:
        """The app has returned or raised (after the response, or with it unfinished)."""


class Cycle:
    """The ASGI side of one HTTP request: `receive`, `send`, and running the app."""

    __slots__ = (
        "body_complete",
        "buffered",
        "chunks",
        "disconnected",
        "flags",
        "framing",
        "headers",
        "keep_alive",
        "request_done",
        "scope",
        "start_time",
        "state",
        "status",
        "trailers",
        "waiter",
    )

    headers: Any
    trailers: bool
    start_time: float

    def __init__(self, scope: Scope, framing: Framing, keep_alive: bool) -> None:
        self.scope = scope
        self.framing = framing
        self.state = START
        self.status = 0
        # request body received and not yet taken by the app (None: nothing yet, which
        # spares most requests, those without a body, a list of their own)
        self.chunks: list[bytes] | None = None
        self.buffered = 0
        self.body_complete = False
        self.request_done = False
        self.disconnected = False
        self.waiter: asyncio.Future[None] | None = None
        self.keep_alive = keep_alive
        # EXPECT_100 / TE_TRAILERS, set by the framing from the request head
        self.flags = 0
        # Set by http.response.start: headers (the app's list) and trailers (bool);
        # start_time is set only when the access log is on.

    # -- events from the framing protocol ------------------------------------------------

    def feed_body(self, data: bytes) -> None:
        chunks = self.chunks
        if chunks is None:
            self.chunks = [data]
        else:
            chunks.append(data)
        self.buffered += len(data)
        if self.waiter is not None:
            self._wake()

    def feed_complete(self) -> None:
        self.body_complete = True
        if self.waiter is not None:
            self._wake()

    def disconnect(self) -> None:
        self.disconnected = True
        if self.waiter is not None:
            self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        self.waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the ASGI callables ---------------------------------------------------------------

    async def receive(self) -> Message:
        while True:
            if self.disconnected:
                return _DISCONNECT.copy()
            chunks = self.chunks
            if chunks:
                body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                self.chunks = None
                self.buffered = 0
                self.framing.body_consumed(self)
                if self.body_complete:
                    self.request_done = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return {"type": "http.request", "body": body, "more_body": True}
            if self.body_complete and not self.request_done:
                self.request_done = True
                return {"type": "http.request", "body": b"", "more_body": False}
            if self.state == DONE:
                return _DISCONNECT.copy()
            if self.flags & EXPECT_100:
                self.flags &= ~EXPECT_100
                if self.state <= HELD:  # the head is not out yet: 100 may still precede it
                    self.framing.write_continue(self)
            waiter = self.waiter
            if waiter is None:
                waiter = self.waiter = self.framing.loop.create_future()
            await waiter

    async def send(self, message: Message) -> None:
        if self.disconnected:
            raise ClientDisconnected()
        mtype = message["type"]
        state = self.state
        if mtype == "http.response.body" and (state == HELD or state == STREAMING):
            body = message.get("body", b"")
            if type(body) is not bytes:
                body = _as_bytes(body)
            if message.get("more_body"):
                new_state = STREAMING
            elif self.trailers:
                new_state = TRAILERS
            else:
                new_state = DONE
            framing = self.framing
            if state == HELD:
                framing.write_head(self, self.status, self.headers, body, new_state == DONE)
            else:
                framing.write_body(self, body, new_state == DONE)
            self.state = new_state
            if new_state == DONE and self.waiter is not None:
                self._wake()
            if framing.write_paused:
                await framing.drain()
            return
        if mtype == "http.response.start":
            if state != START:
                raise RuntimeError(
                    f"http.response.start sent in state {STATE_NAMES[state]}: "
                    "a response can start only once"
                )
            status = message["status"]
            if type(status) is not int or not 200 <= status <= 999:
                raise ValueError(f"http.response.start status must be an int 200-999, not {status!r}")
            self.status = status
            self.headers = message.get("headers", ())
            self.trailers = bool(message.get("trailers", False))
            self.state = HELD
            return
        if mtype == "http.response.trailers" and state == TRAILERS:
            more = bool(message.get("more_trailers", False))
            self.framing.write_trailers(self, message.get("headers", ()), not more)
            if not more:
                self.state = DONE
                if self.waiter is not None:
                    self._wake()
            return
        if mtype == "http.response.pathsend" and state == HELD:
            path = message["path"]
            if not isinstance(path, str) or not os.path.isabs(path):
                raise ValueError(f"http.response.pathsend path must be an absolute str, not {path!r}")
            await self.framing.send_file(self, path)
            self.state = TRAILERS if self.trailers else DONE
            if self.waiter is not None:
                self._wake()
            return
        if state == DONE and mtype in ("http.response.body", "http.response.trailers"):
            return  # the spec says messages after the response are ignored
        # Extensions only some framings have (HTTP/2: early hints, server push) are theirs
        # to handle, through an optional `send_extension(cycle, message) -> bool`.
        extension = getattr(self.framing, "send_extension", None)
        if extension is not None and extension(self, message):
            return
        raise RuntimeError(
            f"unexpected ASGI message {mtype!r} in response state {STATE_NAMES[state]}"
        )

    # -- running the app ------------------------------------------------------------------

    async def run(self, app: ASGIApp) -> None:
        """Run the app for this request in the current task (the runner's slow path)."""
        try:
            await app(self.scope, self.receive, self.send)
        except BaseException as exc:
            self.app_finished(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise  # our task was cancelled: let asyncio see it
            # anything else, SystemExit included, ends this request only, as in uvicorn
        else:
            self.app_finished(None)

    def app_finished(self, exc: BaseException | None) -> None:
        """The app returned (`exc` is None) or raised `exc`: give the request its outcome."""
        if exc is None and self.state == DONE:
            self.framing.app_done(self)
            return
        try:
            if exc is None:
                if self.state != DONE and not self.disconnected:
                    if self.state == START:
                        logger.error("ASGI callable returned without starting the response")
                    else:
                        logger.error("ASGI callable returned without completing the response")
                    self._fail()
            elif isinstance(exc, asyncio.CancelledError):
                if self.state in (START, HELD):
                    self._fail()  # nothing sent yet: the client gets a 500, not a cut
                elif self.state != DONE:
                    self.framing.abort(self)
            elif isinstance(exc, ClientDisconnected) or (
                isinstance(exc, OSError) and self.disconnected
            ):
                pass  # the client left and the app let our signal out: not a crash
            else:
                logger.error("Exception in ASGI application", exc_info=exc)
                self._fail()
        finally:
            self.framing.app_done(self)

    def _fail(self) -> None:
        if self.disconnected or self.state == DONE:
            return
        if self.state in (START, HELD):
            self.status = 500
            self.state = DONE
            self.framing.write_error(self, 500, "Internal Server Error")
        else:
            self.state = DONE
            self.framing.abort(self)
        if self.waiter is not None:
            self._wake()


def _as_bytes(body: Any) -> bytes:
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    raise TypeError(f"http.response.body 'body' must be bytes, not {type(body).__name__}")
