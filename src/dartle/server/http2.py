"""HTTP/2 connections (RFC 9113): frames in, streams run as Cycles, frames out.

An `H2Connection` takes a transport over from HTTP/1.1 (http2_switch.py says how: h2c by
prior knowledge, `Upgrade: h2c`, or ALPN "h2"). From then on it reads frames, keeps the
connection's state (settings, flow-control windows, the HPACK decoder, GOAWAY) and runs
each request stream as a `Cycle` (cycle.py) whose framing is an `H2Stream`
(http2_stream.py); an extended CONNECT for a WebSocket (RFC 8441) gets an `H2WebSocket`
(ws_h2.py) instead. Connection-level frames (SETTINGS, PING, WINDOW_UPDATE, RST_STREAM,
GOAWAY...) are handled in http2_control.py, the wire format in http2_wire.py.

Frames are parsed straight from the bytes read, and everything a read causes is written
back in one transport write: apps that answer at once (the runner starts them when the
read is parsed) add their responses to that same write.

Hostile peers meet limits, each a module constant (here or in http2_control.py) or a
server option; past one, the connection ends with GOAWAY and the error code RFC 9113 (or
common practice) names:

- frames larger than our SETTINGS_MAX_FRAME_SIZE: FRAME_SIZE_ERROR;
- a header block (HEADERS + CONTINUATION) larger than HEADER_BLOCK_LIMIT_FACTOR times
  --max-header-size or in more than MAX_CONTINUATIONS frames, or a header list decoding
  to more than HEADER_LIST_HARD_LIMIT_FACTOR times it: ENHANCE_YOUR_CALM (a list merely
  over --max-header-size gets a 431 on its stream, the connection goes on);
- floods within one housekeeping tick (0.5 s): streams reset by the peer, refused, or
  failed as malformed (rapid reset), PING, SETTINGS, empty DATA frames, and PRIORITY /
  unknown frames: ENHANCE_YOUR_CALM;
- data that cannot leave for --h2-stall-timeout seconds because the peer keeps its
  flow-control window shut or stops reading: ENHANCE_YOUR_CALM;
- everything RFC 9113 calls a connection error: its code (PROTOCOL_ERROR,
  COMPRESSION_ERROR, FLOW_CONTROL_ERROR, STREAM_CLOSED...).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
from time import perf_counter
from typing import TYPE_CHECKING, Any

from dartle.server import proxy
from dartle.server.cycle import DONE, Cycle
from dartle.server.http2_control import HANDLERS, MAX_EMPTY_DATA_PER_TICK, count_noise, count_reset
from dartle.server.http2_stream import H2Stream, StreamBase, expect_flags
from dartle.server.http2_wire import (
    CANCEL,
    CONTINUATION,
    DATA,
    DEFAULT_MAX_FRAME,
    DEFAULT_WINDOW,
    ENABLE_CONNECT_PROTOCOL,
    END_HEADERS,
    END_STREAM,
    ENHANCE_YOUR_CALM,
    ERROR_NAMES,
    FLOW_CONTROL_ERROR,
    FRAME_SIZE_ERROR,
    HEADERS,
    INITIAL_WINDOW_SIZE,
    INTERNAL_ERROR,
    MAX_CONCURRENT_STREAMS,
    MAX_HEADER_LIST_SIZE,
    NO_ERROR,
    PADDED,
    PREFACE,
    PRIORITY_FLAG,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    SETTINGS,
    STREAM_CLOSED,
    ConnectionFailure,
    RequestDecoder,
    StreamFailure,
    goaway,
    rst_stream,
    settings_frame,
    strip_padding,
    unpack_head,
    window_update,
)
from dartle.server.runner import Runner
from dartle.server.serve import TICK
from dartle.server.wire import connection_addresses, http_scope_template
from dartle.server.ws_h2 import open_websocket

if TYPE_CHECKING:
    from dartle.server.serve import ServerState

logger = logging.getLogger("dartle.error")

# Our receive windows. A stream may have this much request body waiting for its app;
# the connection as a whole this much (so a few slow readers cannot hold more).
STREAM_WINDOW = 256 * 1024
CONNECTION_WINDOW = 1024 * 1024
# A WINDOW_UPDATE goes out once this share of a window has been consumed.
UPDATE_SHARE = 2
# A header block's compressed size (HEADERS and its CONTINUATIONs) beyond which the
# connection ends without decoding it, and the decoded size beyond which HPACK stops.
HEADER_BLOCK_LIMIT_FACTOR = 2
HEADER_LIST_HARD_LIMIT_FACTOR = 4
# CONTINUATION frames one header block may take (empty ones would not grow its size).
MAX_CONTINUATIONS = 128
# Streams we reset, remembered so frames the peer sent before it saw the reset are ignored.
RESET_MEMORY = 1024


class H2Connection(asyncio.Protocol):
    """One HTTP/2 connection (server side): its frames, windows, settings and streams."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        config = state.config
        self.loop = state.loop
        self.app = state.app
        self.common = state.common
        self.access_log = state.access_log
        self.max_body = config.max_body_size
        self.root_path = config.root_path
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.server_addr: Any = None
        self.client_addr: Any = None
        self.scheme = "http"
        self.proxy_trusted = False
        self.scope_template: dict[str, Any] = {}
        self.extensions: dict[str, Any] = {}
        # our settings
        self.max_streams = config.h2_max_concurrent_streams
        self.max_frame = DEFAULT_MAX_FRAME
        self.stream_window = STREAM_WINDOW
        self.websockets = config.ws != "none"
        max_head = config.max_header_size
        self.header_block_limit = max(max_head * HEADER_BLOCK_LIMIT_FACTOR, 16 * 1024)
        self.decoder = RequestDecoder(
            max_head, max(max_head * HEADER_LIST_HARD_LIMIT_FACTOR, 64 * 1024), self.root_path
        )
        # the peer's settings
        self.peer_initial_window = DEFAULT_WINDOW
        self.max_send_frame = DEFAULT_MAX_FRAME
        self.push_enabled = True
        self.peer_max_streams = 2**31
        self.settings_seen = False
        # HPACK out: our first field block tells the peer our dynamic table is empty for
        # good (size 0), so no table size change of theirs ever needs an update from us
        self.hpack_prefix = b"\x20"
        # windows
        self.send_window = DEFAULT_WINDOW
        self.recv_window = DEFAULT_WINDOW
        self.unannounced = 0
        # reading
        self.preface = b""  # bytes of the client preface still expected
        self.upgrade_body = 0  # bytes of an h2c upgrade request's body still expected
        self.inbuf = b""
        self.block_sid = 0  # a header block in progress (HEADERS waiting for CONTINUATION)
        self.block_flags = 0
        self.block_parts: list[bytes] = []
        self.block_size = 0
        self.block_tick = 0
        # streams
        self.streams: dict[int, StreamBase] = {}
        self.last_sid = 0
        self.next_push_sid = 2
        self.pushed = 0  # open streams we initiated (pushes)
        self.reset_by_us: dict[int, None] = {}
        self.ready: list[Cycle] = []
        self.blocked: dict[int, StreamBase] = {}
        self.runner = Runner(state)
        self.tasks: set[asyncio.Task[None]] = set()  # app tasks started outside the runner
        # writing
        self.out: list[bytes] = []
        self.held = 0
        self.write_paused = False
        self.closing = False
        self.going_away = -1  # last stream id of the GOAWAY we sent, or -1
        self.peer_going_away = False
        # housekeeping
        self.stall_ticks = max(1, math.ceil(config.h2_stall_timeout / TICK))
        self.idle_tick = state.ticks
        self.stall_tick = -1
        self.close_tick = -1
        self.resets = self.pings = self.settings_count = self.empty_data = self.noise = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.set_write_buffer_limits(64 * 1024, 16 * 1024)
        state = self.state
        state.connections.add(self)
        self.server_addr, self.client_addr, self.proxy_trusted = connection_addresses(
            transport, state.trusted, state.config.proxy_headers
        )
        self.extensions = {
            "http.response.trailers": {},
            "http.response.pathsend": {},
            "http.response.early_hint": {},
            "http.response.push": {},  # until the peer's SETTINGS_ENABLE_PUSH says otherwise
        }
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None and state.tls is not None:
            self.scheme = "https"
            self.extensions["tls"] = state.tls.extension(ssl_object)
        self.scope_template = http_scope_template(
            "2", self.server_addr, self.client_addr, self.scheme, self.root_path, self.extensions
        )
        self.preface = PREFACE
        settings = {
            MAX_CONCURRENT_STREAMS: self.max_streams,
            INITIAL_WINDOW_SIZE: self.stream_window,
            MAX_HEADER_LIST_SIZE: state.config.max_header_size,
        }
        if self.websockets:
            settings[ENABLE_CONNECT_PROTOCOL] = 1
        self.write(settings_frame(settings))
        self.write(window_update(0, CONNECTION_WINDOW - DEFAULT_WINDOW))
        self.recv_window = CONNECTION_WINDOW

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        state = self.state
        state.connections.discard(self)
        streams = list(self.streams.values())
        self.streams.clear()
        self.blocked.clear()
        for stream in streams:
            stream.gone(False)
        for cycle in self.ready:
            cycle.disconnect()
        self.ready.clear()
        self.runner.close()
        state.connection_closed()

    def eof_received(self) -> bool | None:
        return None

    # -- writing --------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue bytes for the peer; they leave at once unless a batch is being built."""
        if self.held:
            self.out.append(data)
        elif not self.closing:
            self.transport.write(data)

    def hold(self) -> None:
        self.held += 1

    def release(self) -> None:
        self.held -= 1
        if not self.held and self.out:
            self.flush()

    def flush(self) -> None:
        out = self.out
        if out:
            data = out[0] if len(out) == 1 else b"".join(out)
            out.clear()
            if not self.closing:
                self.transport.write(data)

    def pause_writing(self) -> None:
        self.write_paused = True
        for stream in self.streams.values():
            stream.write_paused = True
        if self.stall_tick < 0:
            self.stall_tick = self.state.ticks

    def resume_writing(self) -> None:
        self.write_paused = False
        if not self.blocked:
            self.stall_tick = -1
        for stream in list(self.streams.values()):
            if stream.pending is None:
                stream.write_paused = False
                stream.wake_drain()

    def block(self, stream: StreamBase) -> None:
        """`stream` holds DATA until a window opens."""
        self.blocked[stream.sid] = stream
        if self.stall_tick < 0:
            self.stall_tick = self.state.ticks

    def unblock(self, stream: StreamBase) -> None:
        self.blocked.pop(stream.sid, None)
        if not self.blocked and not self.write_paused:
            self.stall_tick = -1

    def progress(self) -> None:
        """Held DATA could leave: the stall clock starts again."""
        if self.stall_tick >= 0:
            self.stall_tick = self.state.ticks

    def flush_blocked(self) -> None:
        for stream in list(self.blocked.values()):
            if self.send_window <= 0:
                break
            stream.flush_pending()

    # -- reading --------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        if self.inbuf:
            data = self.inbuf + data
            self.inbuf = b""
        self.held += 1
        try:
            if self.upgrade_body:
                data = self._upgrade_body(data)
            if self.preface:
                data = self._check_preface(data)
            pos = self._frames(data)
            if pos < len(data) and not self.closing:
                self.inbuf = data[pos:]
        except ConnectionFailure as exc:
            self.fail(exc.code, str(exc))
        except Exception:
            logger.exception("HTTP/2 connection %s: internal error", self.client_addr)
            self.fail(INTERNAL_ERROR, "internal error")
        try:
            ready = self.ready
            if ready:
                self.ready = []
                for cycle in ready:
                    self.start(cycle)
        finally:
            self.held -= 1
            if not self.held:
                self.flush()

    def _upgrade_body(self, data: bytes) -> bytes:
        """The h2c upgrade request's body, which precedes the client preface."""
        n = min(self.upgrade_body, len(data))
        self.upgrade_body -= n
        stream = self.streams.get(1)
        if isinstance(stream, H2Stream):
            stream.upgrade_body(data[:n], not self.upgrade_body)
        return data[n:]

    def _check_preface(self, data: bytes) -> bytes:
        expected = self.preface
        n = min(len(expected), len(data))
        if data[:n] != expected[:n]:
            raise ConnectionFailure(PROTOCOL_ERROR, "invalid HTTP/2 connection preface")
        self.preface = expected[n:]
        return data[n:]

    def _frames(self, data: bytes) -> int:
        """Handle the whole frames in `data`; returns where the first incomplete one starts."""
        n = len(data)
        pos = 0
        max_frame = self.max_frame
        while n - pos >= 9 and not self.closing:
            hi, lo, ftype, flags, sid = unpack_head(data, pos)
            length = (hi << 8) | lo
            if length > max_frame:
                raise ConnectionFailure(
                    FRAME_SIZE_ERROR, f"a frame of {length} bytes (the limit is {max_frame})"
                )
            end = pos + 9 + length
            if end > n:
                break
            payload = data[pos + 9 : end]
            pos = end
            sid &= 0x7FFFFFFF
            try:
                if self.block_sid:
                    self._continuation(ftype, flags, sid, payload)
                elif ftype == HEADERS:
                    self._headers(flags, sid, payload)
                elif ftype == DATA:
                    self._data(flags, sid, payload)
                elif not self.settings_seen and ftype != SETTINGS:
                    raise ConnectionFailure(PROTOCOL_ERROR, "the first frame must be SETTINGS")
                else:
                    handler = HANDLERS.get(ftype)
                    if handler is None:
                        count_noise(self)  # unknown frame types are ignored (RFC 9113 5.5)
                    else:
                        handler(self, flags, sid, payload)
            except StreamFailure as exc:
                logger.debug("HTTP/2 stream %d reset: %s", exc.stream_id, exc)
                count_reset(self)  # a stream of bad requests is a flood too
                stream = self.streams.get(exc.stream_id)
                if stream is not None:
                    self.reset_stream(stream, exc.code)
                else:
                    self._remember_reset(exc.stream_id)
                    self.write(rst_stream(exc.stream_id, exc.code))
        return pos

    # -- HEADERS and CONTINUATION ---------------------------------------------------------

    def _headers(self, flags: int, sid: int, payload: bytes) -> None:
        if not sid or not sid & 1:
            raise ConnectionFailure(PROTOCOL_ERROR, f"HEADERS on stream {sid}")
        if not self.settings_seen:
            raise ConnectionFailure(PROTOCOL_ERROR, "the first frame must be SETTINGS")
        depends = -1
        if flags & (PADDED | PRIORITY_FLAG):
            payload, depends = strip_padding(flags, payload)
        if flags & END_HEADERS:
            self._header_block(sid, flags, payload, depends)
            return
        self.block_sid = sid
        self.block_flags = flags
        self.block_parts = [payload]
        self.block_size = len(payload)
        self.block_tick = self.state.ticks
        self._check_block_size(sid)
        if depends == sid:
            self.block_flags |= 0x100  # remembered: the stream depends on itself

    def _continuation(self, ftype: int, flags: int, sid: int, payload: bytes) -> None:
        if ftype != CONTINUATION or sid != self.block_sid:
            raise ConnectionFailure(PROTOCOL_ERROR, "a header block was interrupted")
        self.block_parts.append(payload)
        self.block_size += len(payload)
        if len(self.block_parts) > MAX_CONTINUATIONS:
            raise ConnectionFailure(ENHANCE_YOUR_CALM, "a flood of CONTINUATION frames")
        self._check_block_size(sid)
        if flags & END_HEADERS:
            block = b"".join(self.block_parts)
            self.block_parts = []
            self.block_sid = 0
            first = self.block_flags
            self._header_block(sid, first, block, sid if first & 0x100 else -1)

    def _check_block_size(self, sid: int) -> None:
        if self.block_size > self.header_block_limit:
            raise ConnectionFailure(
                ENHANCE_YOUR_CALM,
                f"a header block of more than {self.header_block_limit} bytes on stream {sid}",
            )

    def _header_block(self, sid: int, flags: int, block: bytes, depends: int) -> None:
        stream = self.streams.get(sid)
        if stream is not None or sid <= self.last_sid:
            self._trailers(sid, flags, block, stream)
            return
        self.last_sid = sid
        head = self.decoder.request(block)  # decoded first: HPACK must stay in step
        if self.going_away >= 0:
            self._refuse(sid)
            return
        if len(self.streams) - self.pushed >= self.max_streams:
            count_reset(self)
            self._refuse(sid)
            return
        if head.malformed is not None:
            raise StreamFailure(sid, PROTOCOL_ERROR, f"malformed request: {head.malformed}")
        if depends == sid:
            raise StreamFailure(sid, PROTOCOL_ERROR, "a stream cannot depend on itself")
        end = bool(flags & END_STREAM)
        if head.protocol is not None:
            open_websocket(self, sid, head, end)  # RFC 8441 (other protocols get a 501)
            return
        if end and head.content_length > 0:
            raise StreamFailure(sid, PROTOCOL_ERROR, "no DATA for a non-zero Content-Length")
        scope = self.scope_template.copy()
        scope["method"] = head.method
        scope["path"], scope["raw_path"], scope["query_string"] = head.target
        scope["headers"] = head.headers.copy()
        lifespan_state = self.state.lifespan_state
        scope["state"] = lifespan_state.copy() if lifespan_state else {}
        if self.proxy_trusted and head.watched is not None:
            proxy.apply_forwarded(scope, head.watched, self.state.trusted)
        stream = H2Stream(self, sid, head.content_length)
        cycle = stream.cycle = Cycle(scope, stream, True)
        if head.te_trailers or head.expect:
            cycle.flags = expect_flags(head.te_trailers, head.expect, end)
        self.streams[sid] = stream
        if end:
            cycle.body_complete = True
            stream.remote_closed = True
        refusal = head.refusal
        if refusal is None and self.max_body is not None and head.content_length > self.max_body:
            refusal = (413, f"Request body larger than the limit of {self.max_body} bytes")
        if refusal is not None:
            cycle.state = DONE
            stream.app_done_ = True  # no app will run: the rest of the body is unwanted
            stream.write_error(cycle, *refusal)
            return
        self.ready.append(cycle)

    def _trailers(self, sid: int, flags: int, block: bytes, stream: StreamBase | None) -> None:
        """A header block on a stream that exists or existed: the request's trailers."""
        fields = self.decoder.fields(block)
        if stream is None:
            if sid in self.reset_by_us:
                return  # sent before the peer saw our RST_STREAM
            raise ConnectionFailure(STREAM_CLOSED, f"HEADERS on closed stream {sid}")
        if stream.remote_closed:
            raise StreamFailure(sid, STREAM_CLOSED, "HEADERS after the end of the stream")
        if not flags & END_STREAM:
            raise StreamFailure(sid, PROTOCOL_ERROR, "trailers without END_STREAM")
        if any(name[:1] == b":" for name, _ in fields):
            raise StreamFailure(sid, PROTOCOL_ERROR, "pseudo-header in trailers")
        stream.trailers_in()

    def _refuse(self, sid: int) -> None:
        self._remember_reset(sid)
        self.write(rst_stream(sid, REFUSED_STREAM))

    # -- DATA -----------------------------------------------------------------------------

    def _data(self, flags: int, sid: int, payload: bytes) -> None:
        if not sid:
            raise ConnectionFailure(PROTOCOL_ERROR, "DATA on stream 0")
        flow = len(payload)
        if flags & PADDED:
            payload, _ = strip_padding(flags, payload)
        if flow > self.recv_window:
            raise ConnectionFailure(FLOW_CONTROL_ERROR, "DATA beyond the connection window")
        self.recv_window -= flow
        stream = self.streams.get(sid)
        if stream is None:
            self.consumed(None, flow)
            if sid > self.last_sid:
                raise ConnectionFailure(PROTOCOL_ERROR, f"DATA on idle stream {sid}")
            if sid in self.reset_by_us:
                return
            raise ConnectionFailure(STREAM_CLOSED, f"DATA on closed stream {sid}")
        if stream.remote_closed:
            self.consumed(None, flow)
            raise StreamFailure(sid, STREAM_CLOSED, "DATA after the end of the stream")
        if flow > stream.recv_window:
            self.consumed(None, flow)
            raise StreamFailure(sid, FLOW_CONTROL_ERROR, "DATA beyond the stream window")
        stream.recv_window -= flow
        padding = flow - len(payload)
        if padding:
            self.consumed(stream, padding)
        end = bool(flags & END_STREAM)
        if not payload and not end:
            self.empty_data += 1
            if self.empty_data > MAX_EMPTY_DATA_PER_TICK:
                raise ConnectionFailure(ENHANCE_YOUR_CALM, "a flood of empty DATA frames")
        stream.data_in(payload, end)

    def consumed(self, stream: StreamBase | None, n: int) -> None:
        """`n` bytes of DATA are dealt with: hand the window back (WINDOW_UPDATE) in batches."""
        if self.closing:
            return
        self.unannounced += n
        if self.unannounced >= CONNECTION_WINDOW // UPDATE_SHARE:
            self.write(window_update(0, self.unannounced))
            self.recv_window += self.unannounced
            self.unannounced = 0
        if stream is not None and not stream.remote_closed:
            stream.unannounced += n
            if stream.unannounced >= self.stream_window // UPDATE_SHARE:
                self.write(window_update(stream.sid, stream.unannounced))
                stream.recv_window += stream.unannounced
                stream.unannounced = 0

    # -- streams ----------------------------------------------------------------------

    def start(self, cycle: Cycle) -> None:
        if self.closing or cycle.disconnected:
            return
        state = self.state
        if state.limit is not None and state.over_limit():
            cycle.state = DONE
            stream = cycle.framing
            assert isinstance(stream, H2Stream)
            stream.app_done_ = True
            stream.write_error(cycle, 503, "Service Unavailable")
            return
        if self.access_log:
            cycle.start_time = perf_counter()
        state.tasks += 1
        if self.runner.stepping:
            # started from inside an app's step (a push): a task of its own, since the
            # runner takes one request at a time from inside a step
            task = contextvars.copy_context().run(self.loop.create_task, cycle.run(self.app))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        else:
            self.runner.run(cycle)

    def half_closed(self, stream: StreamBase) -> None:
        """One side of `stream` ended; both ended closes it."""
        if (
            stream.local_closed and stream.remote_closed
            and self.streams.pop(stream.sid, None) is not None
        ):
            if not stream.sid & 1:
                self.pushed -= 1
            stream.closed()
            self.stream_closed()

    def reset_stream(self, stream: StreamBase, code: int) -> None:
        """Reset `stream` from our side."""
        sid = stream.sid
        if self.streams.pop(sid, None) is not None and not sid & 1:
            self.pushed -= 1
        self.blocked.pop(sid, None)
        self._remember_reset(sid)
        self.write(rst_stream(sid, code))
        stream.gone(False)
        self.stream_closed()

    def _remember_reset(self, sid: int) -> None:
        memory = self.reset_by_us
        memory[sid] = None
        if len(memory) > RESET_MEMORY:
            del memory[next(iter(memory))]

    def stream_closed(self) -> None:
        if not self.streams:
            self.idle_tick = self.state.ticks
            if (self.going_away >= 0 or self.peer_going_away) and not self.closing:
                self.close()

    # -- closing ----------------------------------------------------------------------

    def fail(self, code: int, message: str) -> None:
        """A connection error: GOAWAY with `code`, then close."""
        if self.closing:
            return
        logger.debug("HTTP/2 connection %s: GOAWAY %s: %s", self.client_addr,
                     ERROR_NAMES.get(code, code), message)
        self.block_sid = 0
        self.write(goaway(self.last_sid, code, message.encode()[:256]))
        self.close()

    def close(self) -> None:
        if not self.closing:
            self.flush()
            self.closing = True
            self.close_tick = self.state.ticks
            self.transport.close()

    def force_close(self) -> None:
        """Drop the connection at once, unsent bytes included."""
        for stream in list(self.streams.values()):
            stream.cancel()
        if not self.closing:
            self.closing = True
        self.transport.abort()

    def shutdown(self) -> None:
        """Graceful shutdown: GOAWAY (new streams are refused), open streams finish."""
        if self.closing:
            return
        if self.going_away < 0:
            self.going_away = self.last_sid
            self.write(goaway(self.last_sid, NO_ERROR))
            for stream in list(self.streams.values()):
                stream.shutdown()
        if not self.streams:
            self.close()

    def tick(self, now: int, keep_alive_ticks: int, header_ticks: int) -> None:
        self.resets = self.pings = self.settings_count = self.empty_data = self.noise = 0
        if self.closing:
            # a peer that reads nothing would keep a closing transport forever
            if self.close_tick >= 0 and now - self.close_tick >= 2:
                self.transport.abort()
            return
        if self.stall_tick >= 0:
            if not self.blocked and not self.write_paused:
                self.stall_tick = -1  # what waited is gone (reset, or the connection moved)
            elif now - self.stall_tick >= self.stall_ticks:
                self.fail(ENHANCE_YOUR_CALM, "flow-control window or socket stalled")
                return
        if self.streams:
            clock = self.loop.time()
            for stream in list(self.streams.values()):
                if stream.overdue(clock):
                    stream.reset(CANCEL)
        if self.block_sid and now - self.block_tick >= header_ticks:
            self.fail(PROTOCOL_ERROR, "header block not completed in time")
            return
        if not self.streams and now - self.idle_tick >= keep_alive_ticks:
            self.going_away = self.last_sid
            self.write(goaway(self.last_sid, NO_ERROR))
            self.close()


