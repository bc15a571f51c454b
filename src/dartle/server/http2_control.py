"""HTTP/2 connection-level frames (RFC 9113 section 6): SETTINGS, PING, WINDOW_UPDATE,
RST_STREAM, PRIORITY, GOAWAY, and the frames a client must not send, with the flood
accounting that ends abusive connections (ENHANCE_YOUR_CALM).

Each handler takes the connection (http2.py) and one frame's flags, stream id and payload,
and raises ConnectionFailure / StreamFailure for what RFC 9113 calls errors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from dartle.server.http2_wire import (
    ACK,
    CONTINUATION,
    DEFAULT_MAX_FRAME,
    ENABLE_CONNECT_PROTOCOL,
    ENABLE_PUSH,
    ENHANCE_YOUR_CALM,
    ERROR_NAMES,
    FLOW_CONTROL_ERROR,
    FRAME_SIZE_ERROR,
    GOAWAY,
    INITIAL_WINDOW_SIZE,
    MAX_CONCURRENT_STREAMS,
    MAX_FRAME_LIMIT,
    MAX_FRAME_SIZE,
    MAX_WINDOW,
    NO_ERROR,
    PING,
    PRIORITY,
    PROTOCOL_ERROR,
    PUSH_PROMISE,
    RST_STREAM,
    SETTINGS,
    SETTINGS_ACK,
    WINDOW_UPDATE,
    ConnectionFailure,
    StreamFailure,
    frame,
    parse_settings,
    u32,
)

if TYPE_CHECKING:
    from dartle.server.http2 import H2Connection

logger = logging.getLogger("dartle.error")

# Flood limits, per housekeeping tick (serve.TICK, 0.5 s). A browser cancelling a page's
# requests or pinging for liveness stays far below them.
MAX_RESETS_PER_TICK = 200  # streams reset by the peer, refused, or failed as malformed
MAX_PINGS_PER_TICK = 100
MAX_SETTINGS_PER_TICK = 100
MAX_EMPTY_DATA_PER_TICK = 200  # DATA frames with no data and no END_STREAM
MAX_NOISE_PER_TICK = 1000  # PRIORITY and frames of unknown types


def on_settings(conn: H2Connection, flags: int, sid: int, payload: bytes) -> None:
    if sid:
        raise ConnectionFailure(PROTOCOL_ERROR, "SETTINGS on a stream")
    if flags & ACK:
        if payload:
            raise ConnectionFailure(FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")
        return
    if len(payload) % 6:
        raise ConnectionFailure(FRAME_SIZE_ERROR, "SETTINGS length not a multiple of 6")
    conn.settings_seen = True
    conn.settings_count += 1
    if conn.settings_count > MAX_SETTINGS_PER_TICK:
        raise ConnectionFailure(ENHANCE_YOUR_CALM, "a flood of SETTINGS frames")
    conn.write(SETTINGS_ACK)
    apply_settings(conn, payload)


def apply_settings(conn: H2Connection, payload: bytes) -> None:
    """Apply the peer's settings (a SETTINGS frame's payload, or h2c's HTTP2-Settings)."""
    opened = False
    for key, value in parse_settings(payload):
        if key == INITIAL_WINDOW_SIZE:
            if value > MAX_WINDOW:
                raise ConnectionFailure(FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE too large")
            delta = value - conn.peer_initial_window
            conn.peer_initial_window = value
            for stream in conn.streams.values():
                stream.send_window += delta
                if stream.send_window > MAX_WINDOW:
                    raise ConnectionFailure(FLOW_CONTROL_ERROR, "a stream window beyond 2^31-1")
            opened = delta > 0
        elif key == MAX_FRAME_SIZE:
            if not DEFAULT_MAX_FRAME <= value <= MAX_FRAME_LIMIT:
                raise ConnectionFailure(PROTOCOL_ERROR, f"invalid SETTINGS_MAX_FRAME_SIZE {value}")
            conn.max_send_frame = value
        elif key == ENABLE_PUSH:
            if value > 1:
                raise ConnectionFailure(PROTOCOL_ERROR, f"invalid SETTINGS_ENABLE_PUSH {value}")
            conn.push_enabled = value == 1
            if conn.push_enabled:
                conn.extensions["http.response.push"] = {}
            else:
                conn.extensions.pop("http.response.push", None)
        elif key == MAX_CONCURRENT_STREAMS:
            conn.peer_max_streams = value
        elif key == ENABLE_CONNECT_PROTOCOL and value > 1:
            raise ConnectionFailure(PROTOCOL_ERROR, f"invalid SETTINGS_ENABLE_CONNECT_PROTOCOL {value}")
        # HEADER_TABLE_SIZE: our encoder keeps no table. MAX_HEADER_LIST_SIZE: advisory.
    if opened:
        for stream in list(conn.streams.values()):
            if stream.pending is not None:
                stream.flush_pending()


def on_ping(conn: H2Connection, flags: int, sid: int, payload: bytes) -> None:
    if sid:
        raise ConnectionFailure(PROTOCOL_ERROR, "PING on a stream")
    if len(payload) != 8:
        raise ConnectionFailure(FRAME_SIZE_ERROR, "PING payload is not 8 bytes")
    if flags & ACK:
        return
    conn.pings += 1
    if conn.pings > MAX_PINGS_PER_TICK:
        raise ConnectionFailure(ENHANCE_YOUR_CALM, "a flood of PING frames")
    conn.write(frame(PING, ACK, 0, payload))


def on_window_update(conn: H2Connection, flags: int, sid: int, payload: bytes) -> None:
    if len(payload) != 4:
        raise ConnectionFailure(FRAME_SIZE_ERROR, "WINDOW_UPDATE payload is not 4 bytes")
    increment = u32(payload) & 0x7FFFFFFF
    if not sid:
        if not increment:
            raise ConnectionFailure(PROTOCOL_ERROR, "WINDOW_UPDATE with an increment of 0")
        conn.send_window += increment
        if conn.send_window > MAX_WINDOW:
            raise ConnectionFailure(FLOW_CONTROL_ERROR, "connection window beyond 2^31-1")
        if conn.blocked:
            conn.flush_blocked()
        return
    stream = conn.streams.get(sid)
    if stream is None:
        check_not_idle(conn, sid, "WINDOW_UPDATE")
        return  # closed: late frames are ignored
    if not increment:
        raise StreamFailure(sid, PROTOCOL_ERROR, "WINDOW_UPDATE with an increment of 0")
    stream.send_window += increment
    if stream.send_window > MAX_WINDOW:
        raise StreamFailure(sid, FLOW_CONTROL_ERROR, "stream window beyond 2^31-1")
    if stream.pending is not None:
        stream.flush_pending()


def on_rst_stream(conn: H2Connection, flags: int, sid: int, payload: bytes) -> None:
    if not sid:
        raise ConnectionFailure(PROTOCOL_ERROR, "RST_STREAM on stream 0")
    if len(payload) != 4:
        raise ConnectionFailure(FRAME_SIZE_ERROR, "RST_STREAM payload is not 4 bytes")
    stream = conn.streams.pop(sid, None)
    if stream is None:
        check_not_idle(conn, sid, "RST_STREAM")
        return
    count_reset(conn)
    conn.blocked.pop(sid, None)
    if sid & 1 == 0:
        conn.pushed -= 1
    stream.gone(True)
    conn.stream_closed()


def on_priority(conn: H2Connection, flags: int, sid: int, payload: bytes) -> None:
    if not sid:
        raise ConnectionFailure(PROTOCOL_ERROR, "PRIORITY on stream 0")
    if len(payload) != 5:
        raise StreamFailure(sid, FRAME_SIZE_ERROR, "PRIORITY payload is not 5 bytes")
    count_noise(conn)
    if u32(payload) & 0x7FFFFFFF == sid:
        raise StreamFailure(sid, PROTOCOL_ERROR, "a stream cannot depend on itself")


def on_goaway(conn: H2Connection, flags: int, sid: int, payload: bytes) -> None:
    if sid:
        raise ConnectionFailure(PROTOCOL_ERROR, "GOAWAY on a stream")
    if len(payload) < 8:
        raise ConnectionFailure(FRAME_SIZE_ERROR, "GOAWAY payload under 8 bytes")
    code = u32(payload, 4)
    if code != NO_ERROR:
        logger.debug("HTTP/2 peer %s sent GOAWAY %s", conn.client_addr, ERROR_NAMES.get(code, code))
    conn.peer_going_away = True
    if not conn.streams:
        conn.close()


def on_push_promise(conn: H2Connection, flags: int, sid: int, payload: bytes) -> None:
    raise ConnectionFailure(PROTOCOL_ERROR, "a client must not send PUSH_PROMISE")


def on_naked_continuation(conn: H2Connection, flags: int, sid: int, payload: bytes) -> None:
    raise ConnectionFailure(PROTOCOL_ERROR, "CONTINUATION without a header block")


def check_not_idle(conn: H2Connection, sid: int, what: str) -> None:
    idle = sid > conn.last_sid if sid & 1 else sid >= conn.next_push_sid
    if idle:
        raise ConnectionFailure(PROTOCOL_ERROR, f"{what} on idle stream {sid}")


def count_reset(conn: H2Connection) -> None:
    conn.resets += 1
    if conn.resets > MAX_RESETS_PER_TICK:
        raise ConnectionFailure(ENHANCE_YOUR_CALM, "too many streams reset or refused (rapid reset)")


def count_noise(conn: H2Connection) -> None:
    conn.noise += 1
    if conn.noise > MAX_NOISE_PER_TICK:
        raise ConnectionFailure(ENHANCE_YOUR_CALM, "a flood of PRIORITY or unknown frames")


Handler = Callable[["H2Connection", int, int, bytes], None]
HANDLERS: dict[int, Handler] = {
    SETTINGS: on_settings,
    PING: on_ping,
    WINDOW_UPDATE: on_window_update,
    RST_STREAM: on_rst_stream,
    PRIORITY: on_priority,
    GOAWAY: on_goaway,
    PUSH_PROMISE: on_push_promise,
    CONTINUATION: on_naked_continuation,
}
