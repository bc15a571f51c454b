"""The server's fast path for whole data frames (ws_protocol.py), where it meets the library.

Frame boundaries: the fast path may only read a frame when the websockets library's
parser is between frames - not when it has taken a frame's head and waits for the rest,
which leaves its buffer empty too.

permessage-deflate, which the fast path drives with zlib directly: a raw client
negotiates each parameter combination of RFC 7692, compresses its messages with its own
zlib objects as the agreed parameters say, and inflates the server's echoes the same
way: a server that kept or dropped its compression context against the agreement, or
compressed with the wrong window, fails here at the first message it gets wrong. Data
that is no deflate stream closes the connection with 1002.
"""

from __future__ import annotations

import re
import struct
import zlib

import pytest

from tests.server import test_websocket as shared
from tests.server.conftest import Harness, dartle_only, new_rid
from tests.server.test_websocket import client_frame, raw_ws

# the shared server fixtures (one ws_app server per module and event loop)
ws_server = shared.ws_server
srv = shared.srv

TAIL = b"\x00\x00\xff\xff"
OFFERS = {
    "default": "permessage-deflate",
    "client-bits": "permessage-deflate; client_max_window_bits",
    "server-no-takeover": "permessage-deflate; server_no_context_takeover",
    "client-no-takeover": "permessage-deflate; client_no_context_takeover",
    "both-no-takeover": "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    "small-windows": "permessage-deflate; server_max_window_bits=9; client_max_window_bits=10",
}
MESSAGES = ["héllo " * 40, "héllo " * 40, "another text", "x" * 5000, "héllo " * 40, ""]


def agreed(header: str, name: str) -> str | None:
    """The value of parameter `name` in the server's answer ("" when it has none)."""
    match = re.search(rf"{name}(?:=(\d+))?(?:;|$)", header)
    return None if match is None else match.group(1) or ""


@pytest.mark.parametrize("offer", list(OFFERS.values()), ids=list(OFFERS))
def test_compressed_echo_honours_the_agreed_parameters(srv: Harness, offer: str) -> None:
    conn = raw_ws(srv)
    head = conn.open("/echo", ("Sec-WebSocket-Extensions", offer))
    answer = head.header("sec-websocket-extensions")
    assert answer is not None and answer.startswith("permessage-deflate"), head.headers
    client_bits = int(agreed(answer, "client_max_window_bits") or 15)
    server_bits = int(agreed(answer, "server_max_window_bits") or 15)
    client_reset = agreed(answer, "client_no_context_takeover") is not None
    server_reset = agreed(answer, "server_no_context_takeover") is not None
    compressor = zlib.compressobj(wbits=-client_bits)
    decompressor = zlib.decompressobj(wbits=-server_bits)
    for text in MESSAGES:
        if client_reset:
            compressor = zlib.compressobj(wbits=-client_bits)
        data = compressor.compress(text.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH)
        conn.send(client_frame(0x1, data[:-4], rsv1=True))
        opcode, payload, fin, rsv1 = conn.read_frame()
        assert (opcode, fin, rsv1) == (0x1, True, True), "the echo must be one compressed text frame"
        if server_reset:
            decompressor = zlib.decompressobj(wbits=-server_bits)
        assert decompressor.decompress(payload + TAIL).decode() == text


@dartle_only
def test_data_that_is_no_deflate_stream_closes_1002(srv: Harness) -> None:
    rid = new_rid()
    conn = raw_ws(srv)
    conn.open(f"/echo?rid={rid}", ("Sec-WebSocket-Extensions", "permessage-deflate"))
    conn.send(client_frame(0x1, b"\xff\xfe\xfd not deflate at all", rsv1=True))
    code, _ = conn.read_close()
    assert code == 1002
    assert srv.wait(rid, "disconnect")["disconnect"]["code"] == 1002


def test_a_frame_whose_head_the_library_took_is_finished_by_the_library(srv: Harness) -> None:
    conn = raw_ws(srv)
    conn.open("/echo")
    # A mask whose first bytes read like a whole empty text frame (0x81 0x80 ...): were the
    # fast path to take over in the middle of the frame, it would deliver "" here.
    mask = b"\x81\x80\x00\x00"
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(b"hello"))
    head = bytes((0x81, 0x80 | 5))
    # A ping goes to the library, and so does the head right behind it (the same read);
    # the pong proves that read was parsed before the rest of the frame is sent.
    conn.send(client_frame(0x9, b"p") + head)
    assert conn.read_frame()[:2] == (0xA, b"p")
    conn.send(mask + payload)
    assert conn.read_frame()[:2] == (0x1, b"hello")
    conn.send(client_frame(0x1, b"after"))  # and the fast path takes the next one
    assert conn.read_frame()[:2] == (0x1, b"after")
    conn.send(client_frame(0x8, struct.pack("!H", 1000)))
    assert conn.read_close()[0] == 1000
