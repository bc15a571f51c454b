"""HTTP/2 streams: the flow-controlled byte pipe of one stream, and the `Framing` of a Cycle.

`StreamBase` is what every stream of an `H2Connection` (http2.py) shares: the peer's
send window and ours, DATA out with what does not fit the windows kept until a
WINDOW_UPDATE opens them, `drain()` for senders, and the bookkeeping of the two halves
closing. `H2Stream` is one request: it carries a `Cycle` (cycle.py) exactly as an
HTTP/1.1 connection does, through the `Framing` interface. ws_h2.py's `H2WebSocket`
carries a WebSocket session the same way (RFC 8441).

Flow control, both ways (RFC 9113 section 5.2):

- out: `send_data` writes what both windows allow and keeps the rest; the stream's
  `write_paused` is then True and the app's `send()` waits in `drain()` until a
  WINDOW_UPDATE let it all out (or the connection's transport buffer is full);
- in: request bytes count against our windows when they arrive and are handed back
  (WINDOW_UPDATE) only as the app consumes them, so a client can never have more than
  one stream window of body waiting per request.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any

from dartle.server.cycle import DONE, EXPECT_100, HELD, START, TE_TRAILERS, Cycle
from dartle.server.errors import ClientDisconnected
from dartle.server.http2_wire import (
    CANCEL,
    DATA,
    END_STREAM,
    INTERNAL_ERROR,
    NO_ERROR,
    PROTOCOL_ERROR,
    PUSH_PROMISE,
    STATUS_FIELDS,
    StreamFailure,
    common_fields,
    field,
    frame_head,
    head_fields,
    header_frames,
    literal,
    status_field,
)
from dartle.server.logs import log_request
from dartle.server.wire import parse_target

if TYPE_CHECKING:
    from dartle.server.http2 import H2Connection

logger = logging.getLogger("dartle.error")

SENDFILE_CHUNK = 64 * 1024
_CONTENT_LENGTHS: dict[int, bytes] = {}


def content_length_field(length: int) -> bytes:
    encoded = _CONTENT_LENGTHS.get(length)
    if encoded is None:
        encoded = literal(b"content-length", b"%d" % length)
        if len(_CONTENT_LENGTHS) < 4096:
            _CONTENT_LENGTHS[length] = encoded
    return encoded


def data_frames(sid: int, data: bytes, end: bool, max_frame: int) -> bytes:
    """`data` as DATA frames of at most `max_frame` bytes, END_STREAM on the last if `end`."""
    view = memoryview(data)
    parts: list[bytes | memoryview] = []
    last = len(data)
    for start in range(0, last, max_frame):
        piece = view[start : start + max_frame]
        flags = END_STREAM if end and start + max_frame >= last else 0
        parts.append(frame_head(len(piece), DATA, flags, sid))
        parts.append(piece)
    return b"".join(parts)


class StreamBase:
    """One stream's windows, its DATA out (held while the windows are shut), its closing."""

    __slots__ = (
        "conn",
        "dead",
        "drain_waiter",
        "fed",
        "local_closed",
        "loop",
        "pending",
        "pending_end",
        "pending_trailers",
        "recv_window",
        "remote_closed",
        "send_window",
        "sid",
        "unannounced",
        "write_paused",
    )

    def __init__(self, conn: H2Connection, sid: int) -> None:
        self.conn = conn
        self.sid = sid
        self.loop = conn.loop
        self.send_window = conn.peer_initial_window
        self.recv_window = conn.stream_window
        self.unannounced = 0  # bytes consumed but not yet handed back with WINDOW_UPDATE
        self.fed = 0  # bytes delivered to the consumer and not consumed yet
        self.pending: bytearray | None = None  # DATA waiting for window
        self.pending_end = False
        self.pending_trailers: bytes | None = None
        self.write_paused = conn.write_paused
        self.drain_waiter: asyncio.Future[None] | None = None
        self.local_closed = False  # our END_STREAM (or RST_STREAM) is out
        self.remote_closed = False  # the peer's END_STREAM (or RST_STREAM) came
        self.dead = False  # reset either way, or the connection is gone

    # -- out ------------------------------------------------------------------------------

    def send_data(self, data: bytes, end: bool) -> None:
        """Send body bytes (END_STREAM with the last if `end`), as the windows allow."""
        if self.pending is None:
            n = len(data)
            conn = self.conn
            if n <= self.send_window and n <= conn.send_window:
                if n or end:
                    self.send_window -= n
                    conn.send_window -= n
                    if n <= conn.max_send_frame:
                        conn.write(frame_head(n, DATA, END_STREAM if end else 0, self.sid) + data)
                    else:
                        conn.write(data_frames(self.sid, data, end, conn.max_send_frame))
                if end:
                    self.ended()
                return
            self.pending = bytearray()
        self.pending += data
        self.pending_end = end
        self.flush_pending()

    def send_trailers(self, block: bytes) -> None:
        """The trailer section, ending the stream (after any DATA still held)."""
        if self.pending is not None:
            self.pending_trailers = block
            return
        self.conn.write(header_frames(self.sid, block, True, self.conn.max_send_frame))
        self.ended()

    def flush_pending(self) -> None:
        """Send what the windows allow of the held DATA; called again as they open."""
        pending = self.pending
        if pending is None or self.dead:
            return
        conn = self.conn
        sid = self.sid
        wrote_end = False
        sent = False
        while pending:
            allowed = min(self.send_window, conn.send_window, conn.max_send_frame)
            if allowed <= 0:
                break
            chunk = bytes(pending[:allowed])
            del pending[:allowed]
            n = len(chunk)
            self.send_window -= n
            conn.send_window -= n
            wrote_end = not pending and self.pending_end and self.pending_trailers is None
            conn.write(frame_head(n, DATA, END_STREAM if wrote_end else 0, sid) + chunk)
            sent = True
        if sent:
            conn.progress()
        if pending:
            conn.block(self)
            self.write_paused = True
            return
        self.pending = None
        conn.unblock(self)
        if self.pending_trailers is not None:
            block, self.pending_trailers = self.pending_trailers, None
            conn.write(header_frames(sid, block, True, conn.max_send_frame))
            self.ended()
        elif self.pending_end:
            if not wrote_end:  # nothing left to carry END_STREAM: an empty DATA frame does
                conn.write(frame_head(0, DATA, END_STREAM, sid))
            self.ended()
        self.write_paused = conn.write_paused
        if not self.write_paused:
            self.wake_drain()

    def wake_drain(self) -> None:
        waiter = self.drain_waiter
        if waiter is not None:
            self.drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def drain(self) -> None:
        """Wait until held DATA is out and the transport takes more (or the stream is gone)."""
        while (self.pending is not None or self.conn.write_paused) and not self.dead:
            waiter = self.drain_waiter
            if waiter is None:
                waiter = self.drain_waiter = self.loop.create_future()
            await asyncio.shield(waiter)

    def ended(self) -> None:
        """Our END_STREAM is out."""
        self.local_closed = True
        self.conn.half_closed(self)

    def reset(self, code: int) -> None:
        """Reset this stream from our side (RST_STREAM with `code`)."""
        if not self.dead:
            self.conn.reset_stream(self, code)

    # -- in (called by the connection) ----------------------------------------------------

    def data_in(self, data: bytes, end: bool) -> None:
        raise NotImplementedError

    def trailers_in(self) -> None:
        """The peer's trailer section (decoded and dropped): its half is closed."""
        self.data_in(b"", True)

    def release_unread(self) -> None:
        """Hand back the connection window of DATA received and never consumed (once the
        stream leaves, or its consumer is done, no WINDOW_UPDATE of its own will)."""
        if self.fed:
            self.conn.consumed(None, self.fed)
            self.fed = 0

    def gone(self, by_peer: bool) -> None:
        """The stream is reset (by the peer if `by_peer`) or its connection is lost."""
        self.release_unread()
        self.dead = True
        self.local_closed = self.remote_closed = True
        self.pending = None
        self.write_paused = False
        self.wake_drain()

    def closed(self) -> None:
        """Both halves ended normally: the stream is gone from its connection."""
        self.release_unread()

    def overdue(self, now: float) -> bool:
        """Whether the stream has outlived a deadline of its own (checked every tick)."""
        return False

    def shutdown(self) -> None:
        """The server is shutting down (the connection sent GOAWAY)."""

    def cancel(self) -> None:
        """Forced shutdown: stop what runs for this stream."""


class H2Stream(StreamBase):
    """One HTTP/2 request: the `Framing` of its `Cycle`."""

    __slots__ = (
        "app_done_",
        "content_length",
        "cycle",
        "expected",
        "no_body",
        "received",
        "trailer_fields",
        "written",
    )

    cycle: Cycle

    def __init__(self, conn: H2Connection, sid: int, content_length: int) -> None:
        super().__init__(conn, sid)
        self.content_length = content_length  # what the request declared, or -1
        self.received = 0
        self.no_body = False
        self.expected = -1
        self.written = 0
        self.trailer_fields: list[bytes] | None = None
        self.app_done_ = False

    # -- request body in ------------------------------------------------------------------

    def data_in(self, data: bytes, end: bool) -> None:
        cycle = self.cycle
        if data:
            n = len(data)
            self.received += n
            if 0 <= self.content_length < self.received:
                self.conn.consumed(None, n)
                raise StreamFailure(self.sid, PROTOCOL_ERROR, "more DATA than the Content-Length")
            if cycle.disconnected or self.app_done_:
                self.conn.consumed(None, n)  # nobody will read it: give the window back
            else:
                limit = self.conn.max_body
                if limit is not None and self.received > limit:
                    self.conn.consumed(None, n)
                    self.body_too_large(limit)
                    return
                self.fed += n
                cycle.feed_body(data)
        if end:
            if self.content_length >= 0 and self.received != self.content_length:
                raise StreamFailure(self.sid, PROTOCOL_ERROR, "less DATA than the Content-Length")
            self.remote_closed = True
            cycle.body_complete = True
            if cycle.waiter is not None:
                cycle.feed_complete()
            self.conn.half_closed(self)

    def upgrade_body(self, data: bytes, end: bool) -> None:
        """Body of an h2c upgrade request (HTTP/1.1 bytes before the preface, no windows)."""
        cycle = self.cycle
        if data:
            self.received += len(data)
            if not cycle.disconnected:
                cycle.feed_body(data)
        if end:
            self.remote_closed = True
            cycle.body_complete = True
            if cycle.waiter is not None:
                cycle.feed_complete()
            self.conn.half_closed(self)

    def body_too_large(self, limit: int) -> None:
        cycle = self.cycle
        message = f"Request body larger than the limit of {limit} bytes"
        logger.debug("stream %d: %s", self.sid, message)
        cycle.disconnect()
        if cycle.state == START:
            cycle.state = DONE
            self.write_error(cycle, 413, message)
            if not self.dead and not self.remote_closed:
                self.reset(NO_ERROR)  # answered: the client may stop sending (RFC 9113 8.1)
        else:
            self.reset(CANCEL)

    def body_consumed(self, cycle: Cycle) -> None:
        fed = self.fed
        if fed:
            self.fed = 0
            self.conn.consumed(self, fed)

    def gone(self, by_peer: bool) -> None:
        super().gone(by_peer)
        self.cycle.disconnect()

    # -- the Framing interface ----------------------------------------------------------

    def write_head(self, cycle: Cycle, status: int, headers: Any, body: bytes, end: bool) -> None:
        if self.dead:
            return
        conn = self.conn
        with_length, without_length, length = head_fields(headers)
        no_body = status == 204 or status == 304 or cycle.scope["method"] == "HEAD"
        if no_body:
            body = b""
            fields = without_length if status == 204 else with_length
        elif length >= 0:
            if length < len(body):
                raise RuntimeError("response body is longer than its Content-Length")
            fields = with_length
        elif end:
            fields = without_length + content_length_field(len(body))
        else:
            fields = without_length
        status_bytes = STATUS_FIELDS.get(status) or status_field(status)
        parts = [conn.hpack_prefix, status_bytes, common_fields(conn.common.block), fields]
        self.no_body = no_body
        self.expected = length if not no_body else -1
        self.written = len(body)
        block = b"".join(parts)
        conn.hpack_prefix = b""
        headers_end = no_body or (end and not body and not cycle.trailers)
        conn.hold()
        conn.write(header_frames(self.sid, block, headers_end, conn.max_send_frame))
        if headers_end:
            self.ended()
        elif body or end:
            if end and 0 <= self.expected != self.written:
                self.short_body(cycle)
            else:
                self.send_data(body, end)
        conn.release()

    def write_body(self, cycle: Cycle, body: bytes, end: bool) -> None:
        if self.dead:
            cycle.disconnected = True
            raise ClientDisconnected()
        if self.no_body:
            if end and not self.local_closed:
                self.ended()
            return
        if body:
            self.written += len(body)
            if 0 <= self.expected < self.written:
                raise RuntimeError("response body is longer than its Content-Length")
        if end and 0 <= self.expected != self.written:
            if body:
                self.send_data(body, False)
            self.short_body(cycle)
            return
        if body or end:
            self.send_data(body, end)

    def short_body(self, cycle: Cycle) -> None:
        logger.error(
            "response body shorter than its Content-Length (%d < %d): resetting the stream",
            self.written, self.expected,
        )
        self.reset(INTERNAL_ERROR)

    def write_trailers(self, cycle: Cycle, headers: Any, end: bool) -> None:
        if self.dead:
            return
        fields = self.trailer_fields
        if fields is None:
            fields = self.trailer_fields = []
        for item in headers:
            encoded = field(item)
            if encoded is None or item[0][:1] == b":":
                raise ValueError(f"{item[0]!r} is not allowed in trailers")
            fields.append(encoded)
        if not end:
            return
        if self.no_body:
            if not self.local_closed:
                self.ended()
        elif cycle.flags & TE_TRAILERS and fields:
            self.send_trailers(b"".join(fields))
        else:
            self.send_data(b"", True)  # the client did not say it takes trailers

    def write_continue(self, cycle: Cycle) -> None:
        if not self.dead:
            self.conn.write(header_frames(self.sid, status_field(100), False, self.conn.max_send_frame))

    def write_error(self, cycle: Cycle, status: int, message: str) -> None:
        cycle.status = status
        if self.dead:
            return
        body = message.encode() + b"\n"
        headers = [(b"content-type", b"text/plain; charset=utf-8")]
        self.write_head(cycle, status, headers, body, True)

    def abort(self, cycle: Cycle) -> None:
        self.reset(INTERNAL_ERROR)

    async def send_file(self, cycle: Cycle, path: str) -> None:
        try:
            file = open(path, "rb")  # noqa: SIM115 - closed in finally; a `with` spans awaits
        except OSError as exc:
            raise RuntimeError(f"http.response.pathsend cannot open {path!r}: {exc}") from None
        try:
            end = not cycle.trailers
            size = os.fstat(file.fileno()).st_size
            if size <= SENDFILE_CHUNK:
                self.write_head(cycle, cycle.status, cycle.headers, file.read(), end)
                return
            self.write_head(cycle, cycle.status, cycle.headers, b"", False)
            while True:
                if self.write_paused:
                    await self.drain()
                if self.dead:
                    raise ClientDisconnected()
                chunk = file.read(SENDFILE_CHUNK)
                if not chunk:
                    self.write_body(cycle, b"", end)
                    return
                self.write_body(cycle, chunk, False)
        finally:
            file.close()

    def app_done(self, cycle: Cycle) -> None:
        self.app_done_ = True
        self.conn.state.task_done()
        self.release_unread()  # body the app left unread
        if self.local_closed and not self.remote_closed and not self.dead:
            # answered without reading the whole body: ask the client to stop sending
            self.reset(NO_ERROR)

    # -- closing ----------------------------------------------------------------------

    def ended(self) -> None:
        if self.conn.access_log:
            self.log_access()
        super().ended()
        if self.app_done_ and not self.remote_closed and not self.dead:
            self.reset(NO_ERROR)

    def log_access(self) -> None:
        cycle = self.cycle
        log_request(cycle.scope, cycle.status, self.written, getattr(cycle, "start_time", None))

    # -- extensions: early hints and server push ------------------------------------------

    def send_extension(self, cycle: Cycle, message: Any) -> bool:
        """ASGI messages beyond the core ones (a Cycle hook); True if handled."""
        mtype = message["type"]
        if mtype == "http.response.early_hint":
            if cycle.state in (START, HELD) and not self.dead:
                links = message.get("links") or ()
                parts = [status_field(103)]
                for link in links:
                    if type(link) is not bytes:
                        raise TypeError(f"http.response.early_hint links must be bytes, not {link!r}")
                    encoded = field((b"link", link))
                    assert encoded is not None
                    parts.append(encoded)
                block = self.conn.hpack_prefix + b"".join(parts)
                self.conn.hpack_prefix = b""
                self.conn.write(header_frames(self.sid, block, False, self.conn.max_send_frame))
            return True
        if mtype == "http.response.push":
            path = message.get("path")
            if type(path) is not str or not path.startswith("/"):
                raise ValueError(f"http.response.push path must be a str starting with '/', not {path!r}")
            headers = message.get("headers") or []
            if cycle.state != DONE and not self.dead and not self.local_closed:
                self.push(path, headers)
            return True
        return False

    def push(self, path: str, headers: Any) -> None:
        """Promise and serve a GET of `path` alongside this stream (RFC 9113 8.4)."""
        conn = self.conn
        if (
            not conn.push_enabled or conn.going_away >= 0 or conn.peer_going_away
            or conn.pushed >= conn.peer_max_streams or conn.next_push_sid > 2**31 - 1
        ):
            return
        authority = None
        for name, value in self.cycle.scope["headers"]:
            if name == b"host":
                authority = value
                break
        try:
            target = parse_target(path.encode("utf-8"), conn.root_path)
        except ValueError as exc:
            raise ValueError(f"http.response.push path: {exc}") from None
        # :method GET and :scheme from the static table, then :path and :authority
        fields = [b"\x82", b"\x86" if conn.scheme == "http" else b"\x87", literal(b":path", path.encode())]
        scope_headers: list[tuple[bytes, bytes]] = []
        if authority is not None:
            fields.append(literal(b":authority", authority))
            scope_headers.append((b"host", authority))
        for item in headers:
            encoded = field(tuple(item))
            if encoded is None:
                continue
            fields.append(encoded)
            scope_headers.append((bytes(item[0]).lower(), bytes(item[1])))
        sid = conn.next_push_sid
        conn.next_push_sid += 2
        block = conn.hpack_prefix + b"".join(fields)
        conn.hpack_prefix = b""
        self.promise(sid, block)
        scope = conn.scope_template.copy()
        scope["method"] = "GET"
        scope["path"], scope["raw_path"], scope["query_string"] = target
        scope["headers"] = scope_headers
        lifespan_state = conn.state.lifespan_state
        scope["state"] = lifespan_state.copy() if lifespan_state else {}
        stream = H2Stream(conn, sid, -1)
        stream.remote_closed = True
        cycle = stream.cycle = Cycle(scope, stream, True)
        cycle.body_complete = True
        conn.streams[sid] = stream
        conn.pushed += 1
        conn.start(cycle)

    def promise(self, promised: int, block: bytes) -> None:
        """A PUSH_PROMISE on this stream for the stream `promised`."""
        prefix = promised.to_bytes(4, "big")
        self.conn.write(header_frames(self.sid, block, False, self.conn.max_send_frame,
                                      PUSH_PROMISE, prefix))

    def shutdown(self) -> None:
        pass  # the request finishes; GOAWAY already keeps new ones out

    def cancel(self) -> None:
        pass  # the server cancels app tasks itself on a forced shutdown


def expect_flags(te_trailers: bool, expect: bool, end: bool) -> int:
    """Cycle flags from the request head."""
    flags = 0
    if te_trailers:
        flags |= TE_TRAILERS
    if expect and not end:
        flags |= EXPECT_100
    return flags
