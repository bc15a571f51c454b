"""WebSocket messages, limits, pings and the closing handshake, over real sockets."""

from __future__ import annotations

import os
import socket
import struct
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from tests.server import test_websocket as shared
from tests.server.conftest import Harness, dartle_only, new_rid, uvicorn_differs
from tests.server.test_websocket import (
    WS_APP,
    RawWS,
    client_frame,
    close_payload,
    closed_by_server,
    handshake,
    open_ws,
    raw_ws,
)

# the shared server fixtures (one ws_app server per module and event loop)
ws_server = shared.ws_server
srv = shared.srv

# -- messages -----------------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["deflate", None], ids=["deflate", "no-deflate"])
def test_text_and_binary_messages_round_trip(srv: Harness, compression: str | None) -> None:
    rid = new_rid()
    messages: list[str | bytes] = [
        "hello", "", "héllo ✓ 🚀", "x" * 70000, b"\x00\x01\xff", b"", bytes(range(256)) * 4096,
    ]
    with open_ws(srv, f"/echo?rid={rid}", compression=compression) as ws:
        for message in messages:
            ws.send(message)
            echoed = ws.recv(timeout=10)
            assert type(echoed) is type(message)
            assert echoed == message
    record = srv.wait(rid, "disconnect")
    kinds = [e["kind"] for e in record["events"] if e["type"] == "websocket.receive"]
    assert kinds == ["text" if isinstance(m, str) else "bytes" for m in messages]
    assert [e["size"] for e in record["events"] if e["type"] == "websocket.receive"] == [
        len(m) for m in messages
    ]


def test_fragmented_messages_are_reassembled(srv: Harness) -> None:
    rid = new_rid()
    with open_ws(srv, f"/echo?rid={rid}", compression=None) as ws:
        ws.send(["frag", "ment", "ed ✓"])
        assert ws.recv(timeout=10) == "fragmented ✓"
        ws.send([b"\x01" * 1000, b"\x02" * 1000, b"\x03"])
        assert ws.recv(timeout=10) == b"\x01" * 1000 + b"\x02" * 1000 + b"\x03"
    received = [e for e in srv.wait(rid, "disconnect")["events"] if e["type"] == "websocket.receive"]
    assert [(e["kind"], e["size"]) for e in received] == [("text", 12), ("bytes", 2001)]


def test_control_frames_between_fragments(srv: Harness) -> None:
    conn = raw_ws(srv)
    conn.open("/echo")
    conn.send(client_frame(0x1, b"one ", fin=False) + client_frame(0x9, b"ping!") + client_frame(0x0, b"two"))
    assert conn.read_frame()[:2] == (0xA, b"ping!")
    assert conn.read_frame()[:2] == (0x1, b"one two")


def test_utf8_split_across_fragments_is_valid(srv: Harness) -> None:
    conn = raw_ws(srv)
    conn.open("/echo")
    snowman = "☃".encode()
    conn.send(client_frame(0x1, snowman[:1], fin=False) + client_frame(0x0, snowman[1:]))
    assert conn.read_frame()[:2] == (0x1, snowman)


@pytest.mark.parametrize(
    "fragmented",
    [False, pytest.param(True, marks=uvicorn_differs("checks UTF-8 only once a message is whole"))],
    ids=["one-frame", "fragmented"],
)
def test_invalid_utf8_closes_1007(srv: Harness, fragmented: bool) -> None:
    rid = new_rid()
    conn = raw_ws(srv)
    conn.open(f"/echo?rid={rid}")
    if fragmented:
        conn.send(client_frame(0x1, b"fine so far ", fin=False) + client_frame(0x0, b"\xc3\x28", fin=False))
    else:
        conn.send(client_frame(0x1, b"bad \xff byte"))
    code, _ = conn.read_close()
    assert code == 1007
    assert conn.closed_by_server() == b""
    assert srv.wait(rid, "disconnect")["disconnect"]["code"] == 1007


def test_protocol_error_closes_1002(srv: Harness) -> None:
    rid = new_rid()
    conn = raw_ws(srv)
    conn.open(f"/echo?rid={rid}")
    conn.send(client_frame(0x0, b"a continuation with nothing to continue"))
    code, _ = conn.read_close()
    assert code == 1002
    assert srv.wait(rid, "disconnect")["disconnect"]["code"] == 1002


@dartle_only
@pytest.mark.parametrize("fragmented", [False, True], ids=["one-frame", "fragmented"])
def test_message_over_max_size_closes_1009(start_server: Any, fragmented: bool) -> None:
    srv = start_server("--ws-max-size", "1024", target=WS_APP)
    rid = new_rid()
    with open_ws(srv, f"/echo?rid={rid}", compression=None) as ws:
        ws.send("x" * 1024)  # at the limit: fine
        assert ws.recv(timeout=10) == "x" * 1024
        try:
            ws.send(["y" * 600, "y" * 600] if fragmented else "y" * 1025)
        except ConnectionClosed as exc:  # the server may close before the last fragment
            rcvd = exc.rcvd
        else:
            rcvd = closed_by_server(ws)
    assert rcvd is not None and rcvd.code == 1009
    assert srv.wait(rid, "disconnect")["disconnect"]["code"] == 1009


@dartle_only
def test_compressed_message_over_max_size_closes_1009(start_server: Any) -> None:
    srv = start_server("--ws-max-size", "4096", target=WS_APP)
    with open_ws(srv, "/echo", compression="deflate") as ws:
        try:
            ws.send("z" * 100_000)  # a few hundred bytes on the wire, too big once inflated
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
        else:
            rcvd = closed_by_server(ws)
    assert rcvd is not None and rcvd.code == 1009


# -- pings ----------------------------------------------------------------------------------


def test_server_answers_pings(srv: Harness) -> None:
    conn = raw_ws(srv)
    conn.open("/echo")
    conn.send(client_frame(0x9, b"are you there"))
    assert conn.read_frame()[:2] == (0xA, b"are you there")
    with open_ws(srv, "/echo") as ws:
        assert ws.ping(b"hi").wait(10)


@dartle_only
def test_server_pings_and_closes_1011_without_a_pong(start_server: Any) -> None:
    srv = start_server("--ws-ping-interval", "0.2", "--ws-ping-timeout", "0.5", target=WS_APP)
    rid = new_rid()
    conn = RawWS(socket.create_connection((srv.host, srv.port), timeout=10))
    try:
        conn.open(f"/echo?rid={rid}")
        opcode, payload, _, _ = conn.read_frame()
        assert opcode == 0x9, "the server sent no keepalive ping"
        conn.send(client_frame(0xA, payload))  # answered: the connection lives on
        opcode, payload2, _, _ = conn.read_frame()
        assert opcode == 0x9, "no second ping after the pong"
        assert payload2 != payload
        conn.send(client_frame(0xA, b"a stale pong"))  # not the answer to this ping
        code, reason = conn.read_close()
        assert code == 1011
        assert "ping timeout" in reason
        record = srv.wait(rid, "disconnect")
        assert record["disconnect"]["code"] == 1011
    finally:
        conn.close()


# -- the closing handshake --------------------------------------------------------------------


def test_client_close_code_and_reason_reach_the_app(srv: Harness) -> None:
    rid = new_rid()
    with open_ws(srv, f"/echo?rid={rid}") as ws:
        ws.close(4001, "bye now")
    disconnect = srv.wait(rid, "disconnect")["disconnect"]
    assert (disconnect["code"], disconnect["reason"]) == (4001, "bye now")


def test_client_close_without_code_is_1005(srv: Harness) -> None:
    rid = new_rid()
    conn = raw_ws(srv)
    conn.open(f"/echo?rid={rid}")
    conn.send(client_frame(0x8, b""))
    opcode, payload, _, _ = conn.read_frame()
    assert (opcode, payload) == (0x8, b"")  # echoed as received
    assert conn.closed_by_server() == b""
    assert srv.wait(rid, "disconnect")["disconnect"]["code"] == 1005


@uvicorn_differs("closes 1002, the websockets library's rule")
def test_close_frame_between_fragments_is_a_clean_close(srv: Harness) -> None:
    rid = new_rid()
    conn = raw_ws(srv)
    conn.open(f"/echo?rid={rid}")
    conn.send(client_frame(0x1, b"half a mess", fin=False) + client_frame(0x8, close_payload(1000)))
    assert conn.read_close() == (1000, "")
    assert srv.wait(rid, "disconnect")["disconnect"]["code"] == 1000


def test_app_close_code_and_reason_reach_the_client(srv: Harness) -> None:
    rid = new_rid()
    with open_ws(srv, f"/echo?rid={rid}") as ws:
        ws.send("close:4002:the app says bye")
        rcvd = closed_by_server(ws)
    assert rcvd is not None and (rcvd.code, rcvd.reason) == (4002, "the app says bye")
    # the app's receive() ends with the client's answer to its close frame
    disconnect = srv.wait(rid, "disconnect")["disconnect"]
    assert (disconnect["code"], disconnect["reason"]) == (4002, "the app says bye")


@uvicorn_differs("reports 1005 for a lost connection")
def test_connection_loss_is_1006(srv: Harness) -> None:
    rid = new_rid()
    conn = raw_ws(srv)
    conn.open(f"/echo?rid={rid}")
    conn.send(client_frame(0x1, b"hello"))
    assert conn.read_frame()[:2] == (0x1, b"hello")
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()  # a reset, no close frame
    assert srv.wait(rid, "disconnect")["disconnect"]["code"] == 1006


@uvicorn_differs("raises RuntimeError, not OSError, after the app closed")
def test_send_after_the_app_closed_raises_oserror(srv: Harness) -> None:
    rid = new_rid()
    with open_ws(srv, f"/close-send?rid={rid}&code=4003&reason=done") as ws:
        rcvd = closed_by_server(ws)
    assert rcvd is not None and (rcvd.code, rcvd.reason) == (4003, "done")
    record = srv.wait(rid, "finished")
    assert record["send_error"] is not None
    assert record["send_error"]["oserror"], record["send_error"]
    assert record["send_error"]["sent"] == "websocket.send"


def test_send_after_the_client_left_raises_oserror(srv: Harness) -> None:
    rid = new_rid()
    with open_ws(srv, f"/hold?rid={rid}") as ws:
        ws.close(1000)
    srv.release(rid)
    record = srv.wait(rid, "finished")
    assert record["disconnect"]["code"] == 1000
    assert record["send_error"] is not None and record["send_error"]["oserror"], record
    assert record["send_error"]["type"] == "ClientDisconnected"


def test_messages_sent_before_a_close_are_delivered_first(srv: Harness) -> None:
    rid = new_rid()
    conn = raw_ws(srv)
    conn.open(f"/hold?rid={rid}")
    messages = b"".join(client_frame(0x1, b"m%d" % i) for i in range(5))
    conn.send(messages + client_frame(0x8, close_payload(4004, "after five")))
    assert conn.read_close() == (4004, "after five")
    srv.release(rid)
    record = srv.wait(rid, "disconnect")
    assert [e.get("value") for e in record["events"][1:6]] == ["m0", "m1", "m2", "m3", "m4"]
    assert (record["disconnect"]["code"], record["disconnect"]["reason"]) == (4004, "after five")


def test_closed_connection_raises_on_the_client_after_close(srv: Harness) -> None:
    with open_ws(srv, "/echo") as ws:
        ws.send("close:1000:")
        closed_by_server(ws)
        with pytest.raises(ConnectionClosed):
            ws.send("too late")


@uvicorn_differs("drops frames that arrive in the same read as the handshake")
def test_frames_sent_with_the_handshake_are_kept_for_the_app(srv: Harness) -> None:
    conn = raw_ws(srv)
    conn.send(handshake("/echo") + client_frame(0x1, b"early") + client_frame(0x2, b"bird"))
    assert conn.read_head().status == 101
    assert conn.read_frame()[:2] == (0x1, b"early")
    assert conn.read_frame()[:2] == (0x2, b"bird")


def test_many_small_messages_in_one_write_all_arrive_in_order(srv: Harness) -> None:
    rid = new_rid()
    conn = raw_ws(srv, timeout=30)
    conn.open(f"/hold?rid={rid}")
    count = 20_000
    burst = b"".join(client_frame(0x1, b"%d" % i) for i in range(count))
    conn.send(burst + client_frame(0x8, close_payload(1000, "done")))
    srv.release(rid)
    assert conn.read_close() == (1000, "done")
    record = srv.wait(rid, "disconnect", timeout=30)
    assert record["received"] == count
    values = [e["value"] for e in record["events"] if e["type"] == "websocket.receive"]
    assert values == [str(i) for i in range(count - len(values), count)]  # the last ones, in order


def test_a_large_message_split_across_many_reads(srv: Harness) -> None:
    conn = raw_ws(srv)
    conn.open("/echo")
    message = os.urandom(300_000)
    frame = client_frame(0x2, message)
    for start in range(0, len(frame), 1000):
        conn.send(frame[start : start + 1000])
    opcode, payload, _, _ = conn.read_frame()
    assert (opcode, payload) == (0x2, message)
