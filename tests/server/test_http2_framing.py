"""HTTP/2 framing details a well-behaved client may use: padding, priorities, CONTINUATION,
request trailers, unknown frames, larger frames, and HEADERS where they do not belong."""

from __future__ import annotations

import struct

from tests.server import h2fixtures
from tests.server.conftest import new_rid
from tests.server.h2client import SETTINGS, Frame, H2Client, parse_frames, raw_frame
from tests.server.h2fixtures import H2Harness, dartle_only

pytestmark = dartle_only

# the HTTP/2 fixtures (h2fixtures.py), under the names the tests ask for
h2_server = h2fixtures.h2_server
h2_shared = h2fixtures.h2_shared

DATA, HEADERS, PRIORITY, RST_STREAM = 0x0, 0x1, 0x2, 0x3
END_STREAM, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x4, 0x8, 0x20
STREAM_CLOSED = 0x5


def fields(client: H2Client, method: str, path: str, extra: list[tuple[str, str]] | None = None) -> bytes:
    """A header block from the client's own HPACK encoder, so both tables stay in step."""
    return client.conn.encoder.encode([(":method", method), (":path", path), (":scheme", "http"),
                                       (":authority", f"{client.host}:{client.port}"), *(extra or [])])


def data_of(frames: list[Frame], sid: int) -> bytes:
    return b"".join(f.payload for f in frames if f.type == DATA and f.stream_id == sid)


def ended(frames: list[Frame], sid: int) -> bool:
    return any(f.type == DATA and f.stream_id == sid and f.flags & END_STREAM for f in frames)


def test_padded_headers_with_priority_and_padded_data(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    client.wait_settings()
    sid = client.conn.get_next_available_stream_id()
    block = fields(client, "POST", "/echo", [("content-length", "5")])
    pad = 7
    payload = bytes([pad]) + struct.pack(">LB", 0, 200) + block + b"\0" * pad
    client.send_raw(raw_frame(HEADERS, END_HEADERS | PADDED | PRIORITY_FLAG, sid, payload))
    client.send_raw(raw_frame(DATA, END_STREAM | PADDED, sid, bytes([3]) + b"hello" + b"\0" * 3))
    # h2 does not know this raw stream: its answer is read as raw frames
    frames = client.read_raw_until(lambda fs: ended(fs, sid))
    assert data_of(frames, sid) == b"hello"


def test_priority_and_unknown_frames_are_ignored(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    client.wait_settings()
    client.send_raw(raw_frame(PRIORITY, 0, 101, struct.pack(">LB", 0, 15)))
    client.send_raw(raw_frame(0xFA, 0x3, 0, b"an extension frame"))
    assert client.get("/scope").status == 200


def test_request_split_into_continuation_frames(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    response = client.get("/scope", [("x-long", "l" * 20_000)])  # h2 splits the block
    assert response.status == 200


def test_response_head_split_into_continuation_frames(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    response = client.get("/big-header?size=40000")
    assert response.header("x-big") == "h" * 40_000
    assert response.body == b"small body"
    frames = parse_frames(bytes(client.raw_in))
    assert any(f.type == 0x9 for f in frames), "a CONTINUATION frame carried the rest"


def test_request_trailers_end_the_body(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    sid = client.request("POST", "/echo", [("te", "trailers")], end=False)
    client.send_all(sid, b"body before trailers", end=False)
    client.conn.send_headers(sid, [("x-checksum", "123")], end_stream=True)
    client.flush()
    assert client.response(sid).body == b"body before trailers"


def test_larger_frames_when_the_client_allows_them(h2_server: H2Harness) -> None:
    client = h2_server.h2(settings={SETTINGS.MAX_FRAME_SIZE: 65536, SETTINGS.INITIAL_WINDOW_SIZE: 2**20})
    client.wait_settings()
    client.conn.increment_flow_control_window(2**20)
    client.flush()
    response = client.get("/big?size=200000")
    assert len(response.body) == 200_000
    sizes = [len(f.payload) for f in parse_frames(bytes(client.raw_in)) if f.type == DATA]
    assert max(sizes) == 65536


def test_headers_after_end_of_stream_is_a_stream_error(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    client.wait_settings()
    rid = new_rid()
    sid = client.request("POST", f"/wait-disconnect?rid={rid}", body=b"body")
    h2_server.wait(rid, "note:second-receive")  # body read; the app waits, no response yet
    # the stream is half-closed (remote): HEADERS on it are a STREAM_CLOSED stream error
    client.send_raw(raw_frame(HEADERS, END_HEADERS | END_STREAM, sid, fields(client, "GET", "/")))
    frames = client.read_raw_until(lambda fs: any(f.type == RST_STREAM and f.stream_id == sid for f in fs))
    reset = next(f for f in frames if f.type == RST_STREAM and f.stream_id == sid)
    assert int.from_bytes(reset.payload, "big") == STREAM_CLOSED
    assert h2_server.wait(rid, "disconnect")["events"][-1]["type"] == "http.disconnect"
