"""Hostile HTTP/2 peers: each flood or violation ends its connection with GOAWAY and the
error code RFC 9113 (or common practice) names, while another connection, opened before,
is still served. The limits are dartle.server.http2's documented module constants.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from typing import Any

import pytest
from hpack.hpack import encode_integer as hpack_integer

from dartle.server import http2_control as server_h2
from tests.server import h2fixtures
from tests.server.conftest import new_rid
from tests.server.h2client import SETTINGS, Closed, H2Client, raw_frame
from tests.server.h2fixtures import H2Harness, dartle_only

pytestmark = dartle_only

# the HTTP/2 fixtures (h2fixtures.py), under the names the tests ask for
h2_server = h2fixtures.h2_server
h2_shared = h2fixtures.h2_shared
start_h2 = h2fixtures.start_h2

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS_FRAME, PUSH_PROMISE, PING, GOAWAY = range(8)
WINDOW_UPDATE, CONTINUATION = 8, 9
END_STREAM, END_HEADERS = 0x1, 0x4
NO_ERROR, PROTOCOL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x3
STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM = 0x5, 0x6, 0x7
COMPRESSION_ERROR, ENHANCE_YOUR_CALM = 0x9, 0xB


_HELD: list[tuple[H2Harness, str]] = []


@pytest.fixture(autouse=True)
def release_held() -> Any:
    """Apps parked in /late-read are released after each test, so they end (and shutdowns
    do not wait for them)."""
    yield
    release_all()


def release_all() -> None:
    while _HELD:
        server, rid = _HELD.pop()
        try:
            server.release(rid)
        except Exception:
            pass


def parked(server: H2Harness, client: H2Client) -> int:
    """A POST whose app waits (without reading) until released; returns its stream id."""
    rid = new_rid()
    _HELD.append((server, rid))
    return client.request("POST", f"/late-read?rid={rid}", end=False)


def send_quietly(client: H2Client, data: bytes) -> None:
    """Send a flood; the server may close the connection before it has read it all."""
    try:
        client.send_raw(data)
    except OSError:
        pass


def assert_goaway(server: H2Harness, attack: Callable[[H2Client], None], code: int) -> H2Client:
    """Run `attack` on a fresh connection: GOAWAY `code`, closed; a bystander still served."""
    bystander = server.h2()
    assert bystander.get("/scope").status == 200
    client = server.h2()
    client.wait_settings()
    attack(client)
    goaway = client.wait_goaway()
    assert goaway.error_code == code, (goaway.error_code, goaway.additional_data)
    client.read_until_closed()
    assert client.closed, "the connection must be closed after the GOAWAY"
    assert bystander.get("/scope").status == 200, "other connections are served undisturbed"
    return client


def request_fields(client: H2Client, path: str = "/scope", method: str = "GET") -> list[tuple[str, str]]:
    return [(":method", method), (":path", path), (":scheme", "http"),
            (":authority", f"{client.host}:{client.port}")]


# -- floods --------------------------------------------------------------------------


def test_rapid_reset(h2_server: H2Harness) -> None:
    def attack(client: H2Client) -> None:
        fields = request_fields(client)
        for _ in range(server_h2.MAX_RESETS_PER_TICK * 10):
            sid = client.conn.get_next_available_stream_id()
            client.conn.send_headers(sid, fields, end_stream=True)
            client.conn.reset_stream(sid)
        send_quietly(client, client.conn.data_to_send())

    assert_goaway(h2_server, attack, ENHANCE_YOUR_CALM)


def test_ping_flood(h2_server: H2Harness) -> None:
    flood = b"".join(raw_frame(PING, 0, 0, struct.pack(">Q", i))
                     for i in range(server_h2.MAX_PINGS_PER_TICK * 10))
    assert_goaway(h2_server, lambda client: send_quietly(client, flood), ENHANCE_YOUR_CALM)


def test_settings_flood(h2_server: H2Harness) -> None:
    flood = raw_frame(SETTINGS_FRAME, 0, 0) * (server_h2.MAX_SETTINGS_PER_TICK * 10)
    assert_goaway(h2_server, lambda client: send_quietly(client, flood), ENHANCE_YOUR_CALM)


def test_empty_data_flood(h2_server: H2Harness) -> None:
    def attack(client: H2Client) -> None:
        sid = parked(h2_server, client)
        send_quietly(client, raw_frame(DATA, 0, sid) * (server_h2.MAX_EMPTY_DATA_PER_TICK * 10))

    assert_goaway(h2_server, attack, ENHANCE_YOUR_CALM)


def test_priority_flood(h2_server: H2Harness) -> None:
    flood = b"".join(raw_frame(PRIORITY, 0, 2 * i + 1, struct.pack(">LB", 0, 15))
                     for i in range(server_h2.MAX_NOISE_PER_TICK * 3))
    assert_goaway(h2_server, lambda client: send_quietly(client, flood), ENHANCE_YOUR_CALM)


# -- sizes ---------------------------------------------------------------------------


def test_oversized_data_frame(h2_server: H2Harness) -> None:
    def attack(client: H2Client) -> None:
        sid = parked(h2_server, client)
        send_quietly(client, raw_frame(DATA, 0, sid, b"x" * 16385))

    assert_goaway(h2_server, attack, FRAME_SIZE_ERROR)


def test_oversized_headers_frame(h2_server: H2Harness) -> None:
    assert_goaway(h2_server, lambda c: send_quietly(c, raw_frame(HEADERS, END_HEADERS, 1, b"\x00" * 20000)),
                  FRAME_SIZE_ERROR)


def test_continuation_flood(h2_server: H2Harness) -> None:
    def attack(client: H2Client) -> None:
        junk = b"\x00\x05x-bad\x05value" * 1000
        frames = [raw_frame(HEADERS, 0, 1, junk[:16000])]
        frames += [raw_frame(CONTINUATION, 0, 1, junk[:16000])] * 100
        send_quietly(client, b"".join(frames))

    assert_goaway(h2_server, attack, ENHANCE_YOUR_CALM)


def test_hpack_bomb(h2_server: H2Harness) -> None:
    def attack(client: H2Client) -> None:
        # one 4000-byte field into the dynamic table, then referenced 1000 times (1 byte each)
        value = b"b" * 4000
        block = b"\x40\x06x-bomb" + bytes(hpack_integer(len(value), 7)) + value  # incremental indexing
        block += b"\xbe" * 1000  # index 62: the newest dynamic entry
        fields = client.conn.encoder.encode(request_fields(client))  # keeps h2's table in step
        send_quietly(client, raw_frame(HEADERS, END_HEADERS | END_STREAM, 1, fields + block))

    assert_goaway(h2_server, attack, ENHANCE_YOUR_CALM)


def test_invalid_hpack(h2_server: H2Harness) -> None:
    attack = lambda c: send_quietly(c, raw_frame(HEADERS, END_HEADERS, 1, b"\xc6"))  # noqa: E731 - index 70
    assert_goaway(h2_server, attack, COMPRESSION_ERROR)


# -- protocol errors -----------------------------------------------------------------


@pytest.mark.parametrize(("frame", "code"), [
    (raw_frame(DATA, 0, 0, b"x"), PROTOCOL_ERROR),
    (raw_frame(HEADERS, END_HEADERS, 2, b"\x82"), PROTOCOL_ERROR),
    (raw_frame(DATA, 0, 99, b"x"), PROTOCOL_ERROR),
    (raw_frame(WINDOW_UPDATE, 0, 0, struct.pack(">L", 0)), PROTOCOL_ERROR),
    (raw_frame(WINDOW_UPDATE, 0, 0, struct.pack(">L", 2**31 - 1)), FLOW_CONTROL_ERROR),
    (raw_frame(WINDOW_UPDATE, 0, 0, b"\x00\x00\x01"), FRAME_SIZE_ERROR),
    (raw_frame(SETTINGS_FRAME, 0, 0, b"\x00\x04\x00"), FRAME_SIZE_ERROR),
    (raw_frame(SETTINGS_FRAME, 0, 0, struct.pack(">HL", 0x4, 2**31)), FLOW_CONTROL_ERROR),
    (raw_frame(SETTINGS_FRAME, 0, 0, struct.pack(">HL", 0x5, 100)), PROTOCOL_ERROR),
    (raw_frame(SETTINGS_FRAME, 0, 0, struct.pack(">HL", 0x2, 2)), PROTOCOL_ERROR),
    (raw_frame(SETTINGS_FRAME, 0x1, 0, b"\x00" * 6), FRAME_SIZE_ERROR),
    (raw_frame(SETTINGS_FRAME, 0, 1), PROTOCOL_ERROR),
    (raw_frame(PING, 0, 0, b"1234567"), FRAME_SIZE_ERROR),
    (raw_frame(PING, 0, 1, b"12345678"), PROTOCOL_ERROR),
    (raw_frame(RST_STREAM, 0, 0, b"\x00\x00\x00\x08"), PROTOCOL_ERROR),
    (raw_frame(RST_STREAM, 0, 77, b"\x00\x00\x00\x08"), PROTOCOL_ERROR),
    (raw_frame(PUSH_PROMISE, END_HEADERS, 1, b"\x00\x00\x00\x02\x82"), PROTOCOL_ERROR),
    (raw_frame(CONTINUATION, END_HEADERS, 1, b"\x82"), PROTOCOL_ERROR),
    (raw_frame(HEADERS, 0, 1, b"\x82") + raw_frame(PING, 0, 0, b"12345678"), PROTOCOL_ERROR),
    (raw_frame(GOAWAY, 0, 1, b"\x00" * 8), PROTOCOL_ERROR),
])
def test_connection_errors(h2_server: H2Harness, frame: bytes, code: int) -> None:
    assert_goaway(h2_server, lambda client: send_quietly(client, frame), code)


def test_data_beyond_the_connection_window(h2_server: H2Harness) -> None:
    def attack(client: H2Client) -> None:
        chunk = b"d" * 16000
        for _ in range(6):  # 6 x 240 KB: each within its stream window, 1.4 MB in all
            sid = parked(h2_server, client)
            send_quietly(client, raw_frame(DATA, 0, sid, chunk) * 15)

    assert_goaway(h2_server, attack, FLOW_CONTROL_ERROR)


def test_data_on_a_closed_stream(h2_server: H2Harness) -> None:
    def attack(client: H2Client) -> None:
        sid = client.request("GET", "/scope")
        client.response(sid)
        send_quietly(client, raw_frame(DATA, 0, sid, b"late"))

    assert_goaway(h2_server, attack, STREAM_CLOSED)


def test_bad_preface_is_refused(h2_server: H2Harness) -> None:
    with socket.create_connection((h2_server.host, h2_server.port), timeout=10) as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400"), answer


# -- stream errors leave the connection alive -----------------------------------------


def test_data_beyond_the_stream_window_resets_the_stream(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    client.wait_settings()
    sid = parked(h2_server, client)
    send_quietly(client, raw_frame(DATA, 0, sid, b"s" * 16000) * 17)  # 272 KB > 256 KiB
    assert client.response(sid).reset == FLOW_CONTROL_ERROR
    assert client.get("/scope").status == 200


def test_too_many_streams_are_refused(start_h2: Any, loop: str) -> None:
    server = start_h2("--loop", loop, "--h2-max-concurrent-streams", "2")
    client = server.h2()
    client.wait_settings()
    assert client.conn.remote_settings.max_concurrent_streams == 2
    client.conn.remote_settings[SETTINGS.MAX_CONCURRENT_STREAMS] = 10  # let h2 send past the limit
    client.conn.remote_settings.acknowledge()
    held = [parked(server, client) for _ in range(2)]
    third = client.request("GET", "/scope")
    assert client.response(third).reset == REFUSED_STREAM
    for sid in held:
        client.reset(sid)
    assert client.get("/scope").status == 200
    release_all()  # before this test's own server stops


# -- slow peers ----------------------------------------------------------------------


def test_zero_window_stall(start_h2: Any, loop: str) -> None:
    server = start_h2("--loop", loop, "--h2-stall-timeout", "1")

    def attack(client: H2Client) -> None:
        client.conn.update_settings({SETTINGS.INITIAL_WINDOW_SIZE: 0})
        client.request("GET", "/big?size=100000")

    assert_goaway(server, attack, ENHANCE_YOUR_CALM)


def test_unfinished_header_block_times_out(start_h2: Any, loop: str) -> None:
    server = start_h2("--loop", loop, "--timeout-header", "1")

    def attack(client: H2Client) -> None:
        send_quietly(client, raw_frame(HEADERS, 0, 1, client.conn.encoder.encode(request_fields(client))))

    assert_goaway(server, attack, PROTOCOL_ERROR)


def test_idle_connection_gets_goaway_no_error(start_h2: Any, loop: str) -> None:
    server = start_h2("--loop", loop, "--timeout-keep-alive", "1")
    client = server.h2()
    assert client.get("/scope").status == 200
    assert client.wait_goaway().error_code == NO_ERROR
    try:
        client.read_until_closed()
    except Closed:
        pass
    assert client.closed
