"""A raw HTTP/2 client for tests: the h2 library (client mode) on a blocking socket.

It speaks h2c by prior knowledge, sends whatever frames a test needs (including ones a
well-behaved client never would, written as raw bytes), and collects h2 events per
stream until a condition holds. Every read has a timeout, so a test never hangs: a
server that stays silent fails the test with the events seen so far.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable, Iterable
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hpack

READ_TIMEOUT = 10.0

Headers = list[tuple[str, str]]


def raw_frame(ftype: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """A frame's bytes, whatever they say (for frames h2 would refuse to send)."""
    head = struct.pack(">L", len(payload))[1:] + bytes((ftype, flags)) + struct.pack(">L", stream_id)
    return head + payload


def literal_block(fields: Iterable[tuple[str, str]]) -> bytes:
    """A header block of never-indexed literals: it leaves both HPACK tables as they were,
    so it can be sent beside the h2 library's own encoder on the same connection."""
    encoder = hpack.Encoder()
    return encoder.encode([hpack.NeverIndexedHeaderTuple(k, v) for k, v in fields], huffman=False)


class Frame:
    """One frame as read off the wire."""

    def __init__(self, ftype: int, flags: int, stream_id: int, payload: bytes) -> None:
        self.type = ftype
        self.flags = flags
        self.stream_id = stream_id
        self.payload = payload

    def __repr__(self) -> str:
        return (f"Frame(type={self.type}, flags={self.flags:#x}, stream={self.stream_id}, "
                f"{len(self.payload)} bytes)")


def parse_frames(data: bytes) -> list[Frame]:
    frames = []
    pos = 0
    while len(data) - pos >= 9:
        length = int.from_bytes(data[pos:pos + 3], "big")
        if len(data) - pos - 9 < length:
            break
        sid = int.from_bytes(data[pos + 5:pos + 9], "big") & 0x7FFFFFFF
        frames.append(Frame(data[pos + 3], data[pos + 4], sid, bytes(data[pos + 9:pos + 9 + length])))
        pos += 9 + length
    return frames


class Closed(Exception):
    """The server closed the connection."""


class H2Client:
    """One HTTP/2 connection to a test server, driven step by step."""

    def __init__(self, host: str, port: int, *, settings: dict[int, int] | None = None,
                 window: int | None = None, upgrade: bool = False, connect: bool = True,
                 sock: socket.socket | None = None) -> None:
        self.sock = sock or socket.create_connection((host, port), timeout=READ_TIMEOUT)
        self.sock.settimeout(READ_TIMEOUT)
        self.host = host
        self.port = port
        self.conn = h2.connection.H2Connection(
            # outbound checks off: tests send exactly the (sometimes invalid) fields they give
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                      validate_inbound_headers=False,
                                      validate_outbound_headers=False,
                                      normalize_outbound_headers=False)
        )
        self.events: list[Any] = []
        self.by_stream: dict[int, list[Any]] = {}
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.closed = False
        self.raw_in = bytearray()  # every byte the server sent, for framing assertions
        if connect and not upgrade:
            self.conn.initiate_connection()
            if settings:
                self.conn.update_settings(settings)
            if window is not None:
                self.conn.increment_flow_control_window(window)
            self.flush()

    # -- sending ----------------------------------------------------------------------

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, method: str, path: str, headers: Headers | None = None,
                body: bytes | None = None, end: bool = True, authority: str | None = None) -> int:
        """Open a stream with a request; returns its id."""
        sid = self.conn.get_next_available_stream_id()
        fields = [(":method", method), (":path", path), (":scheme", "http"),
                  (":authority", authority or f"{self.host}:{self.port}")]
        fields += headers or []
        self.conn.send_headers(sid, fields, end_stream=end and body is None)
        if body is not None:
            self.send_body(sid, body, end)
        self.flush()
        return sid

    def send_body(self, sid: int, body: bytes, end: bool = True) -> None:
        """Send what the windows allow now (the rest is the caller's business)."""
        conn = self.conn
        size = min(conn.local_flow_control_window(sid), len(body))
        view = memoryview(body)
        sent = 0
        while sent < size:
            chunk = min(size - sent, conn.max_outbound_frame_size)
            conn.send_data(sid, bytes(view[sent:sent + chunk]))
            sent += chunk
        if end and sent == len(body):
            conn.end_stream(sid)
        self.flush()
        if sent < len(body):
            raise BlockingIOError(sent)

    def send_all(self, sid: int, body: bytes, end: bool = True) -> None:
        """Send the whole body, waiting for WINDOW_UPDATEs as needed."""
        pos = 0
        while True:
            window = self.conn.local_flow_control_window(sid)
            if window > 0 or pos == len(body):
                piece = body[pos:pos + window]
                try:
                    self.send_body(sid, piece, end and pos + len(piece) == len(body))
                except BlockingIOError:
                    pass
                pos += len(piece)
                if pos == len(body):
                    return
            self.read_until(lambda: self.conn.local_flow_control_window(sid) > 0
                            or self.stream_reset(sid))
            if self.stream_reset(sid):
                return

    def send_headers_raw(self, sid: int, fields: Iterable[tuple[str, str]], end: bool = True) -> None:
        """HEADERS the h2 library would not send (e.g. after GOAWAY), as literals."""
        block = literal_block(fields)
        self.send_raw(raw_frame(0x1, 0x4 | (0x1 if end else 0), sid, block))

    def frames(self) -> list[Frame]:
        """Every frame the server sent (past the first read's preface handling)."""
        return parse_frames(bytes(self.raw_in))

    def read_raw_until(self, done: Callable[[list[Frame]], bool],
                       timeout: float = READ_TIMEOUT) -> list[Frame]:
        """Read without the h2 library (for after GOAWAY) until `done(frames)`."""
        deadline = time.monotonic() + timeout
        while True:
            frames = self.frames()
            if done(frames):
                return frames
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"condition never held; frames: {frames[-20:]}")
            self.sock.settimeout(remaining)
            data = self.sock.recv(65536)
            if not data:
                raise Closed()
            self.raw_in += data

    def reset(self, sid: int, code: int = 8) -> None:
        self.conn.reset_stream(sid, code)
        self.flush()

    def ping(self, data: bytes = b"12345678") -> None:
        self.conn.ping(data)
        self.flush()

    def barrier(self) -> None:
        """PING and wait for its ACK: whatever the server wrote before has arrived."""
        self.pings_sent = getattr(self, "pings_sent", 0) + 1
        data = self.pings_sent.to_bytes(8, "big")
        self.ping(data)
        self.read_until(lambda: any(isinstance(e, h2.events.PingAckReceived) and e.ping_data == data
                                    for e in self.events))

    def wait_settings(self) -> None:
        """Wait for the server's SETTINGS (and its ACK of ours)."""
        self.read_until(lambda: any(isinstance(e, h2.events.SettingsAcknowledged) for e in self.events)
                        and any(isinstance(e, h2.events.RemoteSettingsChanged) for e in self.events))

    # -- receiving --------------------------------------------------------------------

    def receive_once(self, timeout: float | None = None) -> list[Any]:
        self.sock.settimeout(timeout if timeout is not None else READ_TIMEOUT)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed = True
            raise Closed()
        self.raw_in += data
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            raise AssertionError(f"the server sent something h2 refuses: {exc!r}") from exc
        for event in events:
            self.events.append(event)
            sid = getattr(event, "stream_id", None)
            if isinstance(event, h2.events.PushedStreamReceived):
                sid = event.parent_stream_id
            if sid is not None:
                self.by_stream.setdefault(sid, []).append(event)
            if isinstance(event, h2.events.ConnectionTerminated):
                self.goaway = event
            if isinstance(event, h2.events.DataReceived) and self.auto_ack:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        try:
            self.flush()
        except OSError:
            pass
        return events

    auto_ack = True

    def read_until(self, done: Callable[[], bool], timeout: float = READ_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"condition never held; events: {self.events[-20:]}")
            self.receive_once(remaining)

    def read_until_closed(self, timeout: float = READ_TIMEOUT) -> None:
        try:
            self.read_until(lambda: False, timeout)
        except Closed:
            return

    def wait_goaway(self, timeout: float = READ_TIMEOUT) -> h2.events.ConnectionTerminated:
        """Read until GOAWAY arrives (the connection may close right after)."""
        try:
            self.read_until(lambda: self.goaway is not None, timeout)
        except Closed:
            pass
        assert self.goaway is not None, f"no GOAWAY; events: {self.events[-20:]}"
        return self.goaway

    def stream_events(self, sid: int) -> list[Any]:
        return self.by_stream.get(sid, [])

    def stream_ended(self, sid: int) -> bool:
        return any(isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset))
                   for e in self.stream_events(sid))

    def stream_reset(self, sid: int) -> h2.events.StreamReset | None:
        for event in self.stream_events(sid):
            if isinstance(event, h2.events.StreamReset):
                return event
        return None

    def response(self, sid: int, timeout: float = READ_TIMEOUT) -> Response:
        """Wait for stream `sid` to end; returns its response."""
        self.read_until(lambda: self.stream_ended(sid), timeout)
        return Response.of(self.stream_events(sid))

    def get(self, path: str, headers: Headers | None = None) -> Response:
        return self.response(self.request("GET", path, headers))

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class Response:
    """What came back on one stream."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.informational: list[list[tuple[str, str]]] = []
        self.body = b""
        self.trailers: list[tuple[str, str]] | None = None
        self.reset: int | None = None
        self.pushes: list[h2.events.PushedStreamReceived] = []

    @classmethod
    def of(cls, events: Iterable[Any]) -> Response:
        response = cls()
        chunks = []
        for event in events:
            if isinstance(event, h2.events.ResponseReceived):
                response.headers = [(str(k), str(v)) for k, v in event.headers]
                response.status = int(dict(response.headers)[":status"])
            elif isinstance(event, h2.events.InformationalResponseReceived):
                response.informational.append([(str(k), str(v)) for k, v in event.headers])
            elif isinstance(event, h2.events.DataReceived):
                chunks.append(event.data)
            elif isinstance(event, h2.events.TrailersReceived):
                response.trailers = [(str(k), str(v)) for k, v in event.headers]
            elif isinstance(event, h2.events.StreamReset):
                response.reset = int(event.error_code)
            elif isinstance(event, h2.events.PushedStreamReceived):
                response.pushes.append(event)
        response.body = b"".join(chunks)
        return response

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def json(self) -> Any:
        import json

        return json.loads(self.body)


SETTINGS = h2.settings.SettingCodes
