"""HTTP/2 flow control both ways, and RST_STREAM as http.disconnect, on both loops.

Out: the server never sends more DATA than the peer's windows allow, and the app's send()
waits while they are shut. In: the server hands window back (WINDOW_UPDATE) only as the
app consumes the body, so a client cannot push more than a stream window past an app that
does not read.
"""

from __future__ import annotations

from typing import Any

import h2.events

from tests.server import h2fixtures
from tests.server.conftest import new_rid
from tests.server.h2client import SETTINGS, H2Client
from tests.server.h2fixtures import H2Harness, dartle_only

pytestmark = dartle_only

# the HTTP/2 fixtures (h2fixtures.py), under the names the tests ask for
h2_server = h2fixtures.h2_server
h2_shared = h2fixtures.h2_shared
start_h2 = h2fixtures.start_h2

STREAM_WINDOW = 256 * 1024  # what dartle advertises (http2.STREAM_WINDOW)


def data_bytes(client: H2Client, sid: int) -> int:
    return sum(len(e.data) for e in client.stream_events(sid) if isinstance(e, h2.events.DataReceived))


def test_server_respects_the_stream_window(h2_server: H2Harness) -> None:
    client = h2_server.h2(settings={SETTINGS.INITIAL_WINDOW_SIZE: 1000})
    client.auto_ack = False
    client.wait_settings()
    rid = new_rid()
    sid = client.request("GET", f"/stream?rid={rid}&chunks=10&size=3000")
    client.read_until(lambda: data_bytes(client, sid) >= 1000)
    record = h2_server.wait(rid, "stalled")  # the app's send() waits for window
    assert not record["finished"]
    assert data_bytes(client, sid) == 1000, "no more than the window may leave"
    while not client.stream_ended(sid):
        client.conn.increment_flow_control_window(5000, sid)
        client.conn.increment_flow_control_window(5000)
        client.flush()
        client.receive_once()
    response = client.response(sid)
    assert response.body == b"x" * 30_000
    assert h2_server.wait(rid, "finished")["sends"] == 10


def test_server_respects_the_connection_window(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    client.auto_ack = False
    sids = [client.request("GET", "/big?size=50000") for _ in range(3)]
    # 65535 bytes is the connection window every client starts with
    client.read_until(lambda: sum(data_bytes(client, s) for s in sids) >= 65535)
    assert sum(data_bytes(client, s) for s in sids) == 65535
    client.conn.increment_flow_control_window(2**20)
    client.flush()
    for sid in sids:
        assert len(client.response(sid).body) == 50_000


def test_settings_change_reopens_blocked_streams(h2_server: H2Harness) -> None:
    client = h2_server.h2(settings={SETTINGS.INITIAL_WINDOW_SIZE: 100})
    client.wait_settings()
    sid = client.request("GET", "/big?size=5000")
    client.read_until(lambda: data_bytes(client, sid) >= 100)
    client.conn.update_settings({SETTINGS.INITIAL_WINDOW_SIZE: 65535})
    client.flush()
    assert len(client.response(sid).body) == 5000


def test_request_body_waits_for_the_app(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    client.wait_settings()
    rid = new_rid()
    total = 3 * 1024 * 1024
    sid = client.request("POST", f"/hold?rid={rid}", end=False)

    def send_until_shut() -> int:
        sent = 0
        while (window := client.conn.local_flow_control_window(sid)) > 0:
            client.send_body(sid, b"u" * min(window, 16384), end=False)
            sent += min(window, 16384)
        return sent

    sent = send_until_shut()
    assert sent == STREAM_WINDOW, "the advertised stream window is usable at once"
    first_len = h2_server.wait(rid, "events:1")["events"][0]["len"]
    client.barrier()  # a WINDOW_UPDATE for what the app consumed has arrived by now
    sent += send_until_shut()
    client.barrier()
    # The app holds after one receive(): only what it consumed was handed back.
    assert client.conn.local_flow_control_window(sid) == 0
    assert STREAM_WINDOW <= sent <= STREAM_WINDOW + first_len, (sent, first_len)
    h2_server.release(rid)
    client.send_all(sid, b"u" * (total - sent))
    response = client.response(sid, timeout=30)
    assert response.json() == {"bytes": total}


def test_window_updates_follow_consumption(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    body = b"z" * (2 * 1024 * 1024)
    sid = client.request("POST", "/echo", [("content-length", str(len(body)))], end=False)
    client.send_all(sid, body)  # needs WINDOW_UPDATEs for stream and connection alike
    assert client.response(sid, timeout=30).body == body
    updates = [e for e in client.events if isinstance(e, h2.events.WindowUpdated)]
    assert any(e.stream_id == sid for e in updates)
    assert any(e.stream_id == 0 for e in updates)


def test_rst_stream_is_http_disconnect(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    rid = new_rid()
    sid = client.request("POST", f"/wait-disconnect?rid={rid}", body=b"body")
    h2_server.wait(rid, "note:second-receive")
    client.reset(sid)
    record = h2_server.wait(rid, "disconnect")
    assert record["events"][-1]["type"] == "http.disconnect"
    assert client.get("/scope").status == 200, "the connection goes on"


def test_reset_while_app_streams_raises_in_send(h2_server: H2Harness) -> None:
    client = h2_server.h2(settings={SETTINGS.INITIAL_WINDOW_SIZE: 10})
    client.wait_settings()
    rid = new_rid()
    sid = client.request("GET", f"/stream?rid={rid}&chunks=50&size=100")
    h2_server.wait(rid, "stalled")
    client.reset(sid)
    record = h2_server.wait(rid, "finished")
    assert record["send_error"] is not None and record["send_error"]["oserror"]


def test_many_streams_upload_at_once(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    bodies = {}
    for index in range(8):
        body = bytes([65 + index]) * 400_000
        sid = client.request("POST", "/echo", [("content-length", str(len(body)))], end=False)
        bodies[sid] = body
    pending = dict.fromkeys(bodies, 0)
    while pending:
        for sid in list(pending):
            window = min(client.conn.local_flow_control_window(sid), len(bodies[sid]) - pending[sid])
            if window > 0:
                piece = bodies[sid][pending[sid]:pending[sid] + window]
                client.send_body(sid, piece, end=pending[sid] + window == len(bodies[sid]))
                pending[sid] += window
            if pending[sid] == len(bodies[sid]):
                del pending[sid]
        if pending:
            client.receive_once()
    for sid, body in bodies.items():
        assert client.response(sid, timeout=30).body == body


def test_zero_window_stream_stays_until_opened(start_h2: Any, loop: str) -> None:
    server = start_h2("--loop", loop)
    client = server.h2(settings={SETTINGS.INITIAL_WINDOW_SIZE: 0})
    client.wait_settings()
    sid = client.request("GET", "/big?size=1000")
    client.read_until(
        lambda: any(isinstance(e, h2.events.ResponseReceived) for e in client.stream_events(sid))
    )
    assert data_bytes(client, sid) == 0
    other = server.h2()
    assert other.get("/scope").status == 200, "other connections are served meanwhile"
    client.conn.increment_flow_control_window(1000, sid)
    client.flush()
    assert len(client.response(sid).body) == 1000


CONNECTION_WINDOW = 1024 * 1024  # what dartle opens the connection window to (http2.CONNECTION_WINDOW)


def test_connection_window_is_never_lost(start_h2: Any, loop: str) -> None:
    """Every byte of DATA the server receives is handed back to the connection window,
    whatever became of its stream: read, left unread, reset by either side, padded, over
    the Content-Length or over --max-body-size. A lost byte shrinks the window for good,
    and a long-lived connection then stalls (clients report a read timeout)."""
    server = start_h2("--loop", loop, "--max-body-size", "600000")
    client = server.h2()
    client.wait_settings()

    def upload(path: str, body: bytes, headers: list[tuple[str, str]] | None = None) -> int:
        sid = client.request("POST", path, headers, end=False)
        client.send_all(sid, body)
        return sid

    ended: list[int] = [upload("/echo", b"a" * 100_000)]  # read by the app
    # answered without reading: the rest of the body arrives after the server's reset
    sid = client.request("POST", "/scope", end=False)
    client.send_body(sid, b"b" * 30_000, end=False)
    client.send_body(sid, b"b" * 30_000, end=False)
    client.read_until(lambda: client.stream_ended(sid) or client.stream_reset(sid) is not None)
    rid = new_rid()  # held by its app, then reset by the client
    sid = client.request("POST", f"/hold?rid={rid}", end=False)
    client.send_body(sid, b"c" * 60_000, end=False)
    server.wait(rid, "events:1")
    client.reset(sid)
    server.release(rid)
    sid = client.request("POST", "/echo", end=False)  # padded frames
    for _ in range(4):
        client.conn.send_data(sid, b"d" * 5000, pad_length=200)
    client.conn.end_stream(sid)
    client.flush()
    ended.append(sid)
    sid = client.request("POST", "/echo", [("content-length", "10")], end=False)
    client.conn.send_data(sid, b"e" * 5000, end_stream=True)  # more DATA than declared
    client.flush()
    client.read_until(lambda: client.stream_reset(sid) is not None)
    sid = upload("/echo", b"f" * 650_000)  # over --max-body-size: 413
    client.read_until(lambda: client.stream_ended(sid) or client.stream_reset(sid) is not None)
    for sid in ended:
        assert client.response(sid).status == 200
    client.barrier()

    held = CONNECTION_WINDOW - client.conn.outbound_flow_control_window
    assert 0 <= held < CONNECTION_WINDOW // 2, f"{held} bytes never handed back"
    # Bring what the server holds to exactly half the window: if it holds what it says, the
    # WINDOW_UPDATE for the connection comes now, and the whole window is open again.
    updates = sum(isinstance(e, h2.events.WindowUpdated) and e.stream_id == 0 for e in client.events)
    sid = upload("/echo", b"g" * (CONNECTION_WINDOW // 2 - held))
    assert client.response(sid).status == 200
    client.barrier()
    assert sum(isinstance(e, h2.events.WindowUpdated) and e.stream_id == 0 for e in client.events) > updates
    assert client.conn.outbound_flow_control_window == CONNECTION_WINDOW
