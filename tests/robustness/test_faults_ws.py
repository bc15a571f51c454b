"""Faults inside one WebSocket, over HTTP/1.1 and over HTTP/2 (RFC 8441).

The WebSocket part of test_faults.py (read that first). The app raising before it
accepted gets the handshake refused with a 500; raising once the socket is open closes
it with 1011 (or with the app's own code, if its close frame was out already). The
client leaving (a TCP close, half-close or reset with no close frame, END_STREAM or
RST_STREAM of the CONNECT stream, the whole HTTP/2 connection closing; mid-message, right
after its close frame, while the app floods it) gives the app websocket.disconnect with
the right code (1006 for an abrupt loss, the client's own after its close frame), and
send() after that raises the server's OSError. Either way a witness WebSocket and a
witness HTTP request on other connections go on (over HTTP/2 also a witness stream on
the same connection), and the server's task and fd counts come back to where they were.

Also: an HTTP/2 WebSocket ended while its app lags behind (every message still
delivered, the connection window handed back), and a forced shutdown cancelling stuck
WebSocket apps (no error logged).

The app is tests/apps/robust_ws_app.py (robust_app plus recorded WebSocket routes).
"""

from __future__ import annotations

import contextlib
import signal
import socket
import struct
from collections import deque
from collections.abc import Iterator
from typing import Any

import h2.events
import pytest
from websockets.frames import Frame, Opcode
from websockets.sync.client import ClientConnection

from tests.robustness.conftest import stats
from tests.robustness.test_faults import Witness
from tests.robustness.test_faults_h2 import (
    LEAVE_STATES,
    Leaver,
    StreamWitness,
    goes_on,
    open_stream,
    serve_robust_h2,
)
from tests.server.conftest import LOOPS, new_rid
from tests.server.h2client import H2Client
from tests.server.h2fixtures import H2Harness
from tests.server.test_http2_websocket import WebSocketStream
from tests.server.test_websocket import client_frame, close_payload, handshake, open_ws, raw_ws

WS_APP = "tests.apps.robust_ws_app:app"
CARRIERS = ("h1", "h2")
LOGGED = {"error": "RuntimeError", "exit": "AppExit"}
RAISED = {"error": "RuntimeError", "exit": "AppExit", "cancel": "CancelledError"}
CANCEL = 0x8


@pytest.fixture(scope="module", params=LOOPS)
def srv(request: pytest.FixtureRequest) -> Iterator[H2Harness]:
    with serve_robust_h2(request.param, target=WS_APP) as server:
        yield server


# -- one client API over both carriers ------------------------------------------------------


def close_of(frame: tuple[int, bytes]) -> tuple[int, str]:
    opcode, payload = frame
    assert opcode == Opcode.CLOSE, f"expected a close frame, got {frame!r}"
    return struct.unpack("!H", payload[:2])[0], payload[2:].decode()


class H1Socket:
    """A WebSocket over its own HTTP/1.1 connection (raw frames)."""

    def __init__(self, srv: H2Harness, path: str) -> None:
        self.conn = raw_ws(srv)
        self.conn.send(handshake(path))
        self.head = self.conn.read_head()
        self.accepted = self.head.status == 101

    def refusal(self) -> tuple[int, bytes]:
        response = self.conn.read_body(self.head)
        assert self.conn.closed_by_server() == b"", "the connection must close after a refusal"
        return response.status, response.body

    def send(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        self.conn.send(client_frame(opcode, payload, fin))

    def next_frame(self) -> tuple[int, bytes]:
        opcode, payload, _, _ = self.conn.read_frame()
        return opcode, payload

    def answer_close(self, code: int) -> None:
        """Complete the closing handshake the server began; the server then closes."""
        self.send(Opcode.CLOSE, close_payload(code))
        assert self.conn.closed_by_server() == b""

    def read_to_end(self) -> None:
        """Read what the server still sends until it closes (after a half-close)."""
        self.conn.read_until_close()

    def leave(self, how: str) -> None:
        if how == "half-close":
            self.conn.sock.shutdown(socket.SHUT_WR)  # the socket stays open for the server to close
            return
        if how == "rst":
            self.conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.conn.close()


class H2Socket(WebSocketStream):
    """A WebSocket on one stream of an HTTP/2 connection, every frame kept in order."""

    def __init__(self, client: H2Client, path: str) -> None:
        super().__init__(client, path)
        self.accepted = self.head.status == 200
        self.frames: deque[Frame] = deque()

    def refusal(self) -> tuple[int, bytes]:
        response = self.client.response(self.sid)
        return response.status, response.body

    def send(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        super().send(Frame(Opcode(opcode), payload, fin))

    def next_frame(self) -> tuple[int, bytes]:
        client = self.client

        def ready() -> bool:
            events = client.stream_events(self.sid)
            for event in events[self.seen :]:
                if isinstance(event, h2.events.DataReceived):
                    self.protocol.receive_data(event.data)
            self.seen = len(events)
            self.frames.extend(e for e in self.protocol.events_received() if isinstance(e, Frame))
            return bool(self.frames) or client.stream_ended(self.sid)

        client.read_until(ready)
        assert self.frames, f"the stream ended: {client.stream_events(self.sid)}"
        frame = self.frames.popleft()
        return frame.opcode, bytes(frame.data)

    def answer_close(self, code: int) -> None:
        """Complete the closing handshake; the server then ends the stream."""
        self.send(Opcode.CLOSE, close_payload(code))
        self.client.conn.end_stream(self.sid)
        self.client.flush()
        self.client.read_until(lambda: self.client.stream_ended(self.sid))
        assert self.client.stream_reset(self.sid) is None, "the stream must end, not be reset"

    def read_to_end(self) -> None:
        """Read what the server still sends until it ends the stream (after our END_STREAM)."""
        self.client.read_until(lambda: self.client.stream_ended(self.sid))

    def leave(self, how: str) -> None:
        if how == "rst_stream":
            self.client.reset(self.sid, CANCEL)
        elif how == "end_stream":  # our half of the stream ends, without a close frame
            self.client.conn.end_stream(self.sid)
            self.client.flush()
        else:
            self.client.close()


Socket = H1Socket | H2Socket


class Witnesses:
    """A WebSocket and an HTTP request on connections of their own (and, over HTTP/2, a
    request on the fault's connection), in flight while the fault happens."""

    def __init__(self, srv: H2Harness, carrier: str) -> None:
        self.http = Witness(srv)
        self.stack = contextlib.ExitStack()
        self.ws: ClientConnection = self.stack.enter_context(open_ws(srv, "/soak/ws"))
        self.ws.send("before")
        assert self.ws.recv(timeout=10) == "before"
        self.client = srv.h2() if carrier == "h2" else None
        self.same = StreamWitness(self.client) if self.client is not None else None

    def open(self, srv: H2Harness, path: str) -> Socket:
        """The socket under test: on the witnessed HTTP/2 connection, or its own HTTP/1.1 one."""
        return H1Socket(srv, path) if self.client is None else H2Socket(self.client, path)

    def finish(self, same_connection: bool = True) -> None:
        self.http.finish()
        self.ws.send("after")
        assert self.ws.recv(timeout=10) == "after", "the witness WebSocket was lost"
        self.stack.close()
        if self.client is not None and same_connection:
            assert self.same is not None
            self.same.finish()
            goes_on(self.client)


def settle(srv: H2Harness, base: dict[str, int]) -> None:
    srv.close_clients()
    for conn in srv._raws:
        conn.close()
    srv._raws.clear()
    assert srv.process.proc.poll() is None, "the server died"
    stats(srv, until_tasks=base["tasks"], until_fds=base["fds"], timeout=20)


# -- the app raising ----------------------------------------------------------------------

STEPS = ("connect", "accept", "receive", "send", "close")


def check_outcome(sock: Socket, step: str) -> None:
    if step == "connect":
        assert not sock.accepted
        assert sock.refusal() == (500, b"Internal Server Error\n")
        return
    assert sock.accepted, sock.head
    if step != "accept":
        sock.send(Opcode.TEXT, b"hi")
    if step in ("send", "close"):
        assert sock.next_frame() == (Opcode.TEXT, b"echo:hi")
    code, reason = close_of(sock.next_frame())
    if step == "close":
        assert (code, reason) == (4000, "the app closes"), "the app's close frame was out already"
    else:
        assert code == 1011, f"the app crashed with the socket open: 1011, not {code} {reason!r}"
    sock.answer_close(code)


def raise_at(srv: H2Harness, carrier: str, step: str, exc: str, sync: bool) -> None:
    base = stats(srv)
    witnesses = Witnesses(srv, carrier)
    rid = new_rid(f"ws-{exc}")
    mark = srv.log_mark()
    sock = witnesses.open(srv, f"/ws-fault?step={step}&exc={exc}&sync={int(sync)}&rid={rid}")
    check_outcome(sock, step)
    assert srv.wait(rid, "finished")["outcome"].startswith(f"raised {RAISED[exc]}")
    if exc in LOGGED:
        log = srv.wait_for_log(f"{LOGGED[exc]}: fault-{rid}", mark)
        assert log.count(f"{LOGGED[exc]}: fault-{rid}") == 1, "the traceback must be logged once"
    witnesses.finish()
    settle(srv, base)


@pytest.mark.parametrize("sync", [False, True], ids=["after-await", "eager"])
@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("carrier", CARRIERS)
def test_app_raising_at_each_step(srv: H2Harness, carrier: str, step: str, sync: bool) -> None:
    raise_at(srv, carrier, step, "error", sync)


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("exc", ["cancel", "exit"])
@pytest.mark.parametrize("carrier", CARRIERS)
def test_app_raising_cancelled_error_or_system_exit(
    srv: H2Harness, carrier: str, exc: str, step: str
) -> None:
    """CancelledError and SystemExit out of the app are app failures like any other."""
    raise_at(srv, carrier, step, exc, False)


# -- the client leaving -------------------------------------------------------------------

LEAVINGS = [("h1", "fin"), ("h1", "rst"), ("h1", "half-close"),
            ("h2", "rst_stream"), ("h2", "end_stream"), ("h2", "fin")]


def leave_in(srv: H2Harness, carrier: str, how: str, state: str) -> None:
    base = stats(srv)
    witnesses = Witnesses(srv, carrier)
    rid = new_rid(f"ws-gone-{state}")
    route = "/ws-flood" if state == "mid-flood" else "/ws-hold"
    sock = witnesses.open(srv, f"{route}?rid={rid}")
    assert sock.accepted
    srv.wait(rid, "note:accepted")
    if state == "mid-message":
        sock.send(Opcode.TEXT, b"the first half", fin=False)
        sock.send(Opcode.PING, b"sync")  # a control frame may come between fragments
        assert sock.next_frame() == (Opcode.PONG, b"sync")  # so the fragment has been read
    elif state == "after-close":
        sock.send(Opcode.CLOSE, close_payload(4001, "bye"))
    elif state == "mid-flood":
        assert sock.next_frame()[0] == Opcode.BINARY
    sock.leave(how)
    if how in ("half-close", "end_stream"):
        # a client that stops sending but reads on: the server ends its side too (one that
        # read nothing more would hold a flooding app in send() until the close timeout)
        sock.read_to_end()
    record = srv.wait(rid, "finished", timeout=30)
    error = record["send_error"]
    assert error is not None and error["oserror"], f"send() after the client left: {error}"
    assert error["type"] == "ClientDisconnected"
    if state != "mid-flood":
        disconnect = record["events"][-1]
        expected = (4001, "bye") if state == "after-close" else (1006, "")
        assert disconnect["type"] == "websocket.disconnect"
        assert (disconnect["code"], disconnect["reason"]) == expected
        assert [e["type"] for e in record["events"]] == ["websocket.connect", "websocket.disconnect"], (
            "a message cut off must never reach the app"
        )
    witnesses.finish(same_connection=how != "fin")
    settle(srv, base)


# Not h1-rst after-close: a TCP reset may discard the close frame still unread in the
# server's socket buffer, so which code the app gets is the kernel's race.
LEAVE_CASES = [
    pytest.param(carrier, how, state, id=f"{carrier}-{how}-{state}")
    for carrier, how in LEAVINGS
    for state in ("open", "mid-message", "after-close", "mid-flood")
    if (how, state) != ("rst", "after-close")
]


@pytest.mark.parametrize(("carrier", "how", "state"), LEAVE_CASES)
def test_client_leaving(srv: H2Harness, carrier: str, how: str, state: str) -> None:
    leave_in(srv, carrier, how, state)


def test_h2_connection_closes_with_websockets_and_requests_open(srv: H2Harness) -> None:
    """Every WebSocket on the connection gets 1006, every request http.disconnect."""
    base = stats(srv)
    witnesses = Witnesses(srv, "h1")
    client = srv.h2()
    sockets = []
    for _ in range(3):
        rid = new_rid("ws-gone-conn")
        sockets.append((rid, H2Socket(client, f"/ws-hold?rid={rid}")))
        srv.wait(rid, "note:accepted")
    flood = new_rid("ws-gone-flood")
    flooding = H2Socket(client, f"/ws-flood?rid={flood}")
    assert flooding.next_frame()[0] == Opcode.BINARY
    leavers = [Leaver(client, state) for state in LEAVE_STATES]
    for leaver in leavers:
        leaver.start(srv)
    client.close()
    for rid, _ in sockets:
        record = srv.wait(rid, "finished")
        assert record["events"][-1]["code"] == 1006, record["events"]
        assert record["send_error"] is not None and record["send_error"]["oserror"]
    assert srv.wait(flood, "finished")["send_error"]["type"] == "ClientDisconnected"
    for leaver in leavers:
        leaver.check(srv)
    witnesses.finish()
    settle(srv, base)


UNREAD = 200  # messages of 1000 bytes: past the inbox's 64, so the session stops reading


def close_with_messages_unread(srv: H2Harness, client: H2Client) -> dict[str, Any]:
    """A WebSocket whose app stops reading; the client sends UNREAD messages, each in a DATA
    frame of its own (so the session parses each on its fast path), then its close frame and
    END_STREAM. Returns the app's record once it has read everything."""
    rid = new_rid("ws-unread")
    sock = H2Socket(client, f"/ws-hold?wait=after&rid={rid}")
    srv.wait(rid, "note:accepted")
    for _ in range(UNREAD):
        sock.protocol.send_binary(b"m" * 1000)
        client.send_all(sock.sid, b"".join(sock.protocol.data_to_send()), end=False)
    sock.send(Opcode.CLOSE, close_payload(4002, "done"))
    client.conn.end_stream(sock.sid)
    client.flush()
    client.barrier()  # the server has read it all, END_STREAM included
    srv.release(rid)  # and the app reads now
    assert close_of(sock.next_frame()) == (4002, "done"), "the server must answer the client's close"
    client.read_until(lambda: client.stream_ended(sock.sid))
    return srv.wait(rid, "finished")


def test_h2_websocket_ended_while_the_app_lags_delivers_everything(srv: H2Harness) -> None:
    """Messages and the close frame the client sent before its END_STREAM all reach the app,
    although the session had stopped reading when END_STREAM came."""
    base = stats(srv)
    record = close_with_messages_unread(srv, srv.h2())
    kinds = [e["type"] for e in record["events"]]
    assert kinds.count("websocket.receive") == UNREAD, "messages sent before the close were lost"
    assert record["events"][-1] == {"type": "websocket.disconnect", "code": 4002, "reason": "done"}
    settle(srv, base)


def test_h2_websocket_closed_with_its_messages_unread_gives_the_window_back(srv: H2Harness) -> None:
    """Bytes held back while the app stopped reading (the stream's WINDOW_UPDATEs withheld)
    must count as read for the connection once the stream is over, or a few such sockets
    starve it for good."""
    base = stats(srv)
    client = srv.h2()
    for _ in range(6):  # 6 x 200 KB: more than the 1 MiB connection window
        close_with_messages_unread(srv, client)
    sid = client.request("POST", f"/echo?rid={new_rid('upload')}", end=False)
    body = bytes(range(256)) * 6000
    client.send_all(sid, body)
    response = client.response(sid, timeout=20)
    assert (response.status, response.body == body) == (200, True), "the connection window was not given back"
    settle(srv, base)


@pytest.mark.parametrize("phase", ["handshake", "open"])
@pytest.mark.parametrize("carrier", CARRIERS)
def test_forced_shutdown_cancels_stuck_websocket_apps(
    start_server: Any, loop: str, carrier: str, phase: str
) -> None:
    """The server's own cancellation of an app (graceful shutdown timed out) is no app
    failure: no traceback, a clean exit."""
    srv = start_server("--no-access-log", "--loop", loop, "--timeout-graceful-shutdown", "1", target=WS_APP)
    rid = new_rid("ws-stuck")
    wait = "before" if phase == "handshake" else "after"
    path = f"/ws-hold?wait={wait}&rid={rid}"
    client = H2Client(srv.host, srv.port) if carrier == "h2" else None
    try:
        if client is None:
            raw_ws(srv).send(handshake(path))
        else:
            client.wait_settings()
            fields = [(":protocol", "websocket"), ("sec-websocket-version", "13")]
            open_stream(client, "CONNECT", path, fields, end=False)
        srv.wait(rid, "events:1")  # the app has websocket.connect and is stuck
        srv.process.proc.send_signal(signal.SIGTERM)
        assert srv.process.proc.wait(20) in (0, -signal.SIGTERM)
    finally:
        if client is not None:
            client.close()
    log = srv.log_since(0)
    assert "Graceful shutdown timed out" in log
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log
