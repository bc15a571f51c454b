"""WebSocket over HTTP/2 (RFC 8441): extended CONNECT served by the same WebSocket session.

The client is the h2 library for the stream and websockets' sans-I/O protocol (client
side, already open) for the WebSocket frames inside its DATA frames.
"""

from __future__ import annotations

import json
import signal
from typing import Any

import h2.events
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.protocol import OPEN, Protocol, Side

from tests.server import h2fixtures
from tests.server.asgi_json import decode
from tests.server.h2client import H2Client, Response
from tests.server.h2fixtures import H2Harness, dartle_only

pytestmark = dartle_only

# the HTTP/2 fixtures (h2fixtures.py), under the names the tests ask for
h2_server = h2fixtures.h2_server
h2_shared = h2fixtures.h2_shared
start_h2 = h2fixtures.start_h2

CANCEL = 0x8


class WebSocketStream:
    """A WebSocket on one HTTP/2 stream of an H2Client."""

    def __init__(self, client: H2Client, path: str, headers: list[tuple[str, str]] | None = None,
                 version: str = "13") -> None:
        self.client = client
        client.wait_settings()
        self.sid = client.conn.get_next_available_stream_id()
        fields = [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
                  (":path", path), (":authority", f"{client.host}:{client.port}"),
                  ("sec-websocket-version", version), *(headers or [])]
        client.conn.send_headers(self.sid, fields)
        client.flush()
        client.read_until(lambda: any(isinstance(e, (h2.events.ResponseReceived, h2.events.StreamReset))
                                      for e in client.stream_events(self.sid)))
        self.head = Response.of(client.stream_events(self.sid))
        self.protocol = Protocol(Side.CLIENT, state=OPEN)
        self.seen = 0  # events of the stream already fed to the protocol
        self.pending: list[Frame] = []  # frames received but not yet asked for

    def accept_deflate(self) -> None:
        answer = self.head.header("sec-websocket-extensions")
        assert answer is not None
        factory = ClientPerMessageDeflateFactory()
        params = [tuple(p.strip().split("=", 1)) if "=" in p else (p.strip(), None)
                  for p in answer.split(";")[1:]]
        self.protocol.extensions = [factory.process_response_params(params, [])]  # type: ignore[arg-type]

    def send(self, frame: Frame) -> None:
        self.protocol.send_frame(frame)
        self.client.conn.send_data(self.sid, b"".join(self.protocol.data_to_send()))
        self.client.flush()

    def send_text(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        self.client.conn.send_data(self.sid, b"".join(self.protocol.data_to_send()))
        self.client.flush()

    def receive(self) -> Frame:
        """The next frame from the server (pings are answered by the protocol itself)."""
        frames = self.pending

        def ready() -> bool:
            events = self.client.stream_events(self.sid)
            for event in events[self.seen:]:
                if isinstance(event, h2.events.DataReceived):
                    self.protocol.receive_data(event.data)
                elif isinstance(event, h2.events.StreamEnded):
                    self.protocol.receive_eof()
            self.seen = len(events)
            frames.extend(e for e in self.protocol.events_received() if isinstance(e, Frame))
            return bool(frames) or self.client.stream_ended(self.sid)

        self.client.read_until(ready)
        assert frames, f"the stream ended: {self.client.stream_events(self.sid)}"
        return frames.pop(0)


def test_settings_enable_connect_protocol(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    client.wait_settings()
    assert client.conn.remote_settings.enable_connect_protocol == 1


def test_echo_and_scope(h2_server: H2Harness) -> None:
    ws = WebSocketStream(h2_server.h2(), "/ws/echo?q=1", [("sec-websocket-protocol", "chat, other")])
    assert ws.head.status == 200
    assert ws.head.header("sec-websocket-protocol") == "chat"
    assert ws.head.header("x-ws") == "yes"
    assert ws.head.header("sec-websocket-accept") is None, "RFC 8441: no key, no accept"
    ws.send_text("hello")
    frame = ws.receive()
    assert (frame.opcode, frame.data) == (Opcode.TEXT, b"hello")
    ws.send(Frame(Opcode.BINARY, b"\x00\x01\x02"))
    frame = ws.receive()
    assert (frame.opcode, frame.data) == (Opcode.BINARY, b"\x00\x01\x02")
    ws.send_text("scope")
    scope = decode(json.loads(ws.receive().data))
    assert scope["type"] == "websocket"
    assert scope["http_version"] == "2"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/ws/echo"
    assert scope["query_string"] == b"q=1"
    assert scope["subprotocols"] == ["chat", "other"]
    assert scope["headers"][0] == [b"host", f"127.0.0.1:{h2_server.port}".encode()]
    assert not any(name.startswith(b":") for name, _ in scope["headers"])


def test_large_messages_both_ways(h2_server: H2Harness) -> None:
    ws = WebSocketStream(h2_server.h2(), "/ws/echo")
    payload = bytes(range(256)) * 4096  # 1 MiB: more than the stream windows
    ws.protocol.send_binary(payload)
    data = b"".join(ws.protocol.data_to_send())
    ws.client.send_all(ws.sid, data, end=False)
    frame = ws.receive()
    assert frame.data == payload


def test_server_close_then_stream_end(h2_server: H2Harness) -> None:
    ws = WebSocketStream(h2_server.h2(), "/ws/echo")
    ws.send_text("close")
    frame = ws.receive()
    assert frame.opcode == Opcode.CLOSE
    assert frame.data[:2] == (4001).to_bytes(2, "big")
    ws.protocol.receive_data(b"")  # nothing; answer the close as a client does
    ws.send(Frame(Opcode.CLOSE, frame.data[:2]))
    ws.client.conn.end_stream(ws.sid)
    ws.client.flush()
    ws.client.read_until(lambda: ws.client.stream_ended(ws.sid))
    ended = [e for e in ws.client.stream_events(ws.sid) if isinstance(e, h2.events.StreamEnded)]
    assert ended, "the server ends its half of the stream after the closing handshake"
    assert ws.client.get("/scope").status == 200, "the connection goes on"


def test_client_close(h2_server: H2Harness) -> None:
    ws = WebSocketStream(h2_server.h2(), "/ws/echo")
    ws.send(Frame(Opcode.CLOSE, (1000).to_bytes(2, "big") + b"bye"))
    frame = ws.receive()
    assert frame.opcode == Opcode.CLOSE
    assert frame.data[:2] == (1000).to_bytes(2, "big")


def test_permessage_deflate(h2_server: H2Harness) -> None:
    ws = WebSocketStream(h2_server.h2(), "/ws/echo",
                         [("sec-websocket-extensions", "permessage-deflate; client_max_window_bits")])
    assert (ws.head.header("sec-websocket-extensions") or "").startswith("permessage-deflate")
    ws.accept_deflate()
    ws.send_text("squeeze me " * 100)
    assert ws.receive().data == ("squeeze me " * 100).encode()


def test_refusal_is_403(h2_server: H2Harness) -> None:
    ws = WebSocketStream(h2_server.h2(), "/ws/refuse")
    response = ws.client.response(ws.sid)
    assert response.status == 403


def test_denial_response(h2_server: H2Harness) -> None:
    ws = WebSocketStream(h2_server.h2(), "/ws/deny")
    response = ws.client.response(ws.sid)
    assert response.status == 418
    assert response.body == b"I'm a teapot"


def test_wrong_version_is_426(h2_server: H2Harness) -> None:
    ws = WebSocketStream(h2_server.h2(), "/ws/echo", version="8")
    response = ws.client.response(ws.sid)
    assert response.status == 426
    assert response.header("sec-websocket-version") == "13"


def test_other_protocols_get_501(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    client.wait_settings()
    sid = client.conn.get_next_available_stream_id()
    client.conn.send_headers(sid, [(":method", "CONNECT"), (":protocol", "webtransport"),
                                   (":scheme", "http"), (":path", "/"), (":authority", "x")])
    client.flush()
    assert client.response(sid).status == 501


def test_stream_reset_is_abnormal_disconnect(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    ws = WebSocketStream(client, "/ws/echo")
    ws.send_text("ping")
    assert ws.receive().data == b"ping"
    client.reset(ws.sid, CANCEL)
    other = WebSocketStream(client, "/ws/echo")
    other.send_text("still here")
    assert other.receive().data == b"still here"


def test_many_websockets_on_one_connection(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    sockets = [WebSocketStream(client, "/ws/echo") for _ in range(20)]
    for index, ws in enumerate(sockets):
        ws.send_text(f"message {index}")
    for index, ws in enumerate(sockets):
        assert ws.receive().data == f"message {index}".encode()


def test_shutdown_closes_websockets_with_1001(start_h2: Any, loop: str) -> None:
    server = start_h2("--loop", loop)
    ws = WebSocketStream(server.h2(), "/ws/echo")
    ws.send_text("x")
    assert ws.receive().data == b"x"
    server.process.proc.send_signal(signal.SIGTERM)

    def after_goaway(frames: list[Any]) -> list[Any]:
        kinds = [f.type for f in frames]
        return frames[kinds.index(7):] if 7 in kinds else []

    # h2 takes nothing after a GOAWAY: the frames are read raw from here on
    frames = ws.client.read_raw_until(
        lambda fs: any(f.type == 0 and f.stream_id == ws.sid for f in after_goaway(fs))
    )
    for f in after_goaway(frames):
        if f.type == 0 and f.stream_id == ws.sid:
            ws.protocol.receive_data(f.payload)
    frame = next(e for e in ws.protocol.events_received() if isinstance(e, Frame))
    assert frame.opcode == Opcode.CLOSE
    assert frame.data[:2] == (1001).to_bytes(2, "big")
