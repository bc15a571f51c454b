"""The response side of an HTTP/1.1 connection: the `Framing` interface cycle.py drives.

`H1Response` is a part of `http1.H1Connection` (a mixin, like flow.WriteFlow): it turns a
response's head, body chunks and trailers into bytes on the transport, deciding
Content-Length vs chunked vs close-delimited, and checks the body against the length the
app gave. The request side - parsing, scopes, pipelining, closing - stays in http1.py.

Write coalescing: a complete response that came in one message (the usual one, up to
DEFER_LIMIT bytes) is not written at once but at the end of the event-loop iteration,
when every connection served in that iteration writes back to back, each its responses
in one write. A peer woken by the first write (a proxy or a load generator on the same
host) then finds the others waiting instead of being woken once per response: each
wake-up spared is a few microseconds of kernel time on the writing side, which measured
as much as the rest of a small response's cost. Every other write goes out at once,
after what its connection deferred, so bytes never change order; closing, upgrading or
handing the transport over flushes first, aborting drops. A response defers only when
something could join it: another connection, or a pipelined request queued behind it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any

from dartle.server.cycle import HEAD_REQUEST, HTTP_10, TE_TRAILERS, Cycle
from dartle.server.errors import ClientDisconnected
from dartle.server.flow import WriteFlow
from dartle.server.wire import (
    HEAD_BLOCKS,
    STATUS_LINES,
    CommonHeaders,
    HeadBlock,
    error_response,
    head_block,
    status_line,
)

if TYPE_CHECKING:
    from dartle.server.serve import ServerState

logger = logging.getLogger("dartle.error")

SENDFILE_CHUNK = 256 * 1024
# At most this many bytes of one connection's responses wait for the end of the loop
# iteration; a longer response is written at once.
DEFER_LIMIT = 16 * 1024

_BODILESS = frozenset((204, 304))  # statuses whose responses never have a body
_NOT_PLAIN = HEAD_REQUEST | HTTP_10  # requests whose response heads need the framing's care

# Per server (hence per event loop): the connections that deferred a response in this
# loop iteration.
_BATCHES: weakref.WeakKeyDictionary[ServerState, list[H1Response]] = weakref.WeakKeyDictionary()


def write_batch(state: ServerState) -> list[H1Response]:
    """The list of `state`'s server that connections join when they defer a write."""
    batch = _BATCHES.get(state)
    if batch is None:
        batch = _BATCHES[state] = []
    return batch


def flush_batch(batch: list[H1Response]) -> None:
    """Write the responses that connections deferred in the iteration that just ended."""
    # (writing runs no app code: nothing can join the batch while it is flushed; the loop
    # is H1Response.flush_deferred's, inlined: it runs once per response under load)
    for conn in batch:
        data = conn.deferred
        if data:
            conn.deferred = b""
            if not conn.closing:
                conn.transport.write(data)
    batch.clear()


class H1Response(WriteFlow):
    """Response framing for an `H1Connection`: the slots below are its own."""

    __slots__ = (
        "batch",
        "chunked",
        "deferred",
        "expected",
        "no_body",
        "sendfile_ok",
        "trailers_open",
        "written",
    )

    # the connection's, which this side uses
    state: ServerState
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    common: CommonHeaders
    closing: bool
    pipeline: deque[Cycle]

    def __init__(self, state: ServerState) -> None:
        self.batch = write_batch(state)
        self.deferred = b""  # a complete response (or pipelined ones) not written yet
        self.sendfile_ok = True  # until TLS, or a loop without sendfile, says otherwise
        # the response in progress: its framing, and the body bytes written against the
        # Content-Length the app gave (expected, -1 for none)
        self.chunked = False
        self.no_body = False
        self.trailers_open = False
        self.expected = -1
        self.written = 0

    def _response_done(self, cycle: Cycle) -> None:
        """The response is complete: the connection serves the next request or closes."""
        raise NotImplementedError

    def force_close(self) -> None:
        """Drop the connection at once, unsent bytes included."""
        raise NotImplementedError

    def _write(self, data: bytes) -> None:
        """Write now, after any bytes deferred before."""
        if self.deferred:
            self.flush_deferred()
        self.transport.write(data)

    def flush_deferred(self) -> None:
        """Write now what this connection deferred (see the module's doc)."""
        data = self.deferred
        if data:
            self.deferred = b""
            if not self.closing:
                self.transport.write(data)

    def write_continue(self, cycle: Cycle) -> None:
        if not self.closing:
            self._write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def write_head(self, cycle: Cycle, status: int, headers: Any, body: bytes, end: bool) -> None:
        if self.closing:
            return
        try:
            block = HEAD_BLOCKS.get(tuple(headers))
        except TypeError:
            block = None
        if block is None:
            block = head_block(headers)
        plain = block[4]
        if (
            plain is not None
            and end
            and block[2] == len(body)
            and status not in _BODILESS
            and not cycle.flags & _NOT_PLAIN
            and cycle.keep_alive
            and cycle.body_complete
            and not self.state.shutting_down
        ):
            # The usual response: whole in one message, as long as its Content-Length
            # says, to an HTTP/1.1 request other than HEAD, on a connection that stays
            # open. Nothing to decide: the checked block goes out as it is.
            self.written = block[2]
            data = b"".join(
                (STATUS_LINES.get(status) or status_line(status), self.common.block, plain, body)
            )
            deferred = self.deferred
            if deferred:
                if len(deferred) + len(data) <= DEFER_LIMIT:
                    self.deferred = deferred + data  # pipelined responses: one write
                else:
                    self._write(data)
            elif len(data) <= DEFER_LIMIT and (self.pipeline or len(self.state.connections) > 1):
                # (alone, with no request queued behind it, it has nothing to wait for)
                self.deferred = data
                batch = self.batch
                if not batch:
                    # runs once the loop has served every connection ready this iteration
                    self.loop.call_soon(flush_batch, batch)
                batch.append(self)
            else:
                self.transport.write(data)
            self._response_done(cycle)
            return
        self._write_framed_head(cycle, status, block, body, end)

    def _write_framed_head(
        self, cycle: Cycle, status: int, block: HeadBlock, body: bytes, end: bool
    ) -> None:
        """write_head for every other response: the framing decides length, coding, close."""
        lines, without_length, length, closes, _ = block
        framing = b"\r\n"  # the lines the framing adds, and the blank line
        chunked = False
        expected = -1
        http_10 = cycle.flags & HTTP_10
        if status in _BODILESS or cycle.flags & HEAD_REQUEST:
            no_body = True
            if status == 204:
                lines = without_length
            # else Content-Length still describes the representation, as the app says
        else:
            no_body = False
            if cycle.trailers and cycle.flags & TE_TRAILERS and not http_10:
                chunked = True
                lines = without_length
                framing = b"transfer-encoding: chunked\r\n\r\n"
            elif length >= 0:
                expected = length
            elif end:
                framing = b"content-length: %d\r\n\r\n" % len(body)
            elif not http_10:
                chunked = True
                framing = b"transfer-encoding: chunked\r\n\r\n"
            else:
                closes = True  # HTTP/1.0 without a length: closing ends the body
        if closes or not cycle.keep_alive or not cycle.body_complete or self.state.shutting_down:
            # (the app answered before the whole request body arrived, or we are leaving:
            # either way this connection ends after the response, and says so)
            cycle.keep_alive = False
            framing = framing[:-2] + b"connection: close\r\n\r\n"
        elif http_10:
            framing = framing[:-2] + b"connection: keep-alive\r\n\r\n"
        if no_body or not body:
            written = 0
            body = b""
        else:
            written = len(body)
            if chunked:
                body = b"%x\r\n%s\r\n" % (written, body)
            elif 0 <= expected < written:
                raise RuntimeError("response body is longer than its Content-Length")
        self.written = written
        self.expected = expected
        head = STATUS_LINES.get(status) or status_line(status)
        if end:
            if chunked:
                body += b"0\r\n\r\n"
            self._write(b"".join((head, self.common.block, lines, framing, body)))
            if written < expected:
                self._end_response(cycle)
            else:
                self._response_done(cycle)
        else:
            # how write_body and write_trailers go on with this response
            self.chunked = chunked
            self.no_body = no_body
            self.trailers_open = False
            self._write(b"".join((head, self.common.block, lines, framing, body)))

    def write_body(self, cycle: Cycle, body: bytes, end: bool) -> None:
        if self.closing or self.transport.is_closing():
            # The peer is gone (a failed write closes the transport at once, but
            # connection_lost comes a loop iteration later): an app streaming without
            # ever waiting must hear it now, not after its whole body.
            cycle.disconnected = True
            raise ClientDisconnected()
        if body and not self.no_body:
            self.written += len(body)
            if self.expected >= 0 and self.written > self.expected:
                raise RuntimeError("response body is longer than its Content-Length")
            if self.chunked:
                self._write(b"%x\r\n%s\r\n" % (len(body), body))
            else:
                self._write(body)
        if end:
            if self.chunked:
                self._write(b"0\r\n\r\n")
            self._end_response(cycle)

    def write_trailers(self, cycle: Cycle, headers: Any, end: bool) -> None:
        if self.closing:
            return
        try:
            lines = [b"%s: %s\r\n" % (name, value) for name, value in headers]
        except TypeError:
            raise TypeError("trailer names and values must be bytes") from None
        block = b"".join(lines)
        if block.count(b"\n") != len(lines) or block.count(b"\r") != len(lines):
            raise ValueError("trailer names and values must not contain CR or LF")
        if self.chunked:
            if not cycle.flags & TE_TRAILERS:
                block = b""  # the client did not say it accepts trailers (TE: trailers)
            if not self.trailers_open:
                self.trailers_open = True
                block = b"0\r\n" + block
            self._write(block + b"\r\n" if end else block)
        if end:
            self._end_response(cycle)

    def _end_response(self, cycle: Cycle) -> None:
        if self.written < self.expected:
            logger.error(
                "response body shorter than its Content-Length (%d < %d): closing",
                self.written, self.expected,
            )
            cycle.keep_alive = False
        self._response_done(cycle)

    async def send_file(self, cycle: Cycle, path: str) -> None:
        try:
            file = open(path, "rb")  # noqa: SIM115 - closed in finally; a `with` spans awaits
        except OSError as exc:
            raise RuntimeError(f"http.response.pathsend cannot open {path!r}: {exc}") from None
        try:
            end = not cycle.trailers
            size = os.fstat(file.fileno()).st_size
            if size <= SENDFILE_CHUNK:
                data = file.read()
                self.write_head(cycle, cycle.status, cycle.headers, data, end)
                return
            self.write_head(cycle, cycle.status, cycle.headers, b"", False)
            if self.no_body:
                self.write_body(cycle, b"", end)
                return
            if self.sendfile_ok and not self.chunked:
                try:
                    sent = await self.loop.sendfile(self.transport, file, 0, size, fallback=False)
                except (NotImplementedError, asyncio.SendfileNotAvailableError):
                    self.sendfile_ok = False  # uvloop has no sendfile: copy through the transport
                else:
                    self.written += sent
                    self.write_body(cycle, b"", end)
                    return
            while True:
                if self.closing:
                    raise ClientDisconnected()
                if self.write_paused:
                    await self.drain()
                chunk = file.read(SENDFILE_CHUNK)
                if not chunk:
                    self.write_body(cycle, b"", end)
                    return
                self.write_body(cycle, chunk, False)
        finally:
            file.close()

    def write_error(self, cycle: Cycle, status: int, message: str) -> None:
        cycle.status = status
        cycle.keep_alive = False
        self._write_canned(cycle, status, message)

    def _write_canned(self, cycle: Cycle, status: int, message: str) -> None:
        cycle.status = status
        cycle.keep_alive = False
        if not self.closing:
            self._write(error_response(self.common, status, message))
        self._response_done(cycle)

    def abort(self, cycle: Cycle) -> None:
        self.force_close()

