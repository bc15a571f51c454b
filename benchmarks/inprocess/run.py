"""Serve N requests (or WebSocket messages) in-process through a server's protocol object.

No sockets: a fake transport counts writes. Under `valgrind --tool=callgrind` the
instruction count per request is repeatable whatever else the machine does, which makes
it the tool for tuning the hot path on a shared machine (see instructions.sh).

    python benchmarks/inprocess/run.py dartle 16000 16            # server, requests, depth
    python benchmarks/inprocess/run.py uvicorn 16000 1 framework  # ... and a scenario
    python benchmarks/inprocess/run.py dartle 16000 1 hello 64    # ... on 64 connections

Servers: dartle, uvicorn (httptools, websockets-sansio), canned (the floor: one write
per request head, no parsing; HTTP scenarios only). Scenarios:

- hello: the plaintext benchmark's raw ASGI hello world (benchmarks/apps/hello.py)
- framework: the framework plaintext route; dartle's App on dartle, Starlette on uvicorn
- ws: WebSocket echo of a 1 KiB text message, permessage-deflate negotiated and used
  (the client compresses with context takeover, as the websocket benchmark's does);
  depth is ignored: one message in flight, as one benchmark client has

Connections (HTTP scenarios; default 1): that many connections of one server, each fed
`depth` requests in the same loop callback, as one event-loop iteration serves the
connections a poll found ready (`wrk -c64` keeps 64 of them busy). The requests must be
a multiple of depth x connections.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"
WS_MESSAGE = b"0123456789abcdef" * 64


def scenario_app(server: str, scenario: str) -> Any:
    sys.path.insert(0, str(ROOT))
    if scenario == "hello":
        from benchmarks.apps import hello

        return hello.app
    if scenario == "ws":
        from benchmarks.apps import ws_echo

        return ws_echo.app
    if scenario == "framework":
        from tests.web.apps import plaintext

        return plaintext.starlette_app if server == "uvicorn" else plaintext.app
    raise SystemExit(f"unknown scenario {scenario!r}: hello, framework or ws")


class Transport:
    """Just enough of an asyncio transport for an HTTP/1 (or upgraded) protocol object.

    It counts write calls and HTTP responses apart: a server may write several
    responses at once (pipelined ones, or the canned floor's).
    """

    def __init__(self, responses: list[int] | None = None) -> None:
        self.writes = 0
        self.responses = responses if responses is not None else [0]  # shared by a run's
        self.last = b""
        self.protocol: Any = None

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.responses[0] += data.count(b"HTTP/1.1 ")
        self.last = data

    def writelines(self, data: Any) -> None:
        for item in data:
            self.write(item)

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def is_closing(self) -> bool:
        return False

    def close(self) -> None: ...

    def set_write_buffer_limits(self, *args: Any) -> None: ...

    def get_write_buffer_size(self) -> int:
        return 0

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_protocol(self) -> Any:
        return self.protocol

    def get_extra_info(self, key: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 5555)}.get(key, default)


class Canned(asyncio.Protocol):
    """benchmarks/apps/canned.py's protocol: the cost of the loop and the harness only."""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 13\r\n\r\nHello, world!"
                             * data.count(b"\r\n\r\n"))


def protocol_factory(server: str, app: Any, loop: asyncio.AbstractEventLoop) -> Callable[[], Any]:
    """New protocol objects (one per connection) of one server."""
    if server == "dartle":
        from dartle.config import Config
        from dartle.server.http1 import H1Connection
        from dartle.server.serve import ServerState

        state = ServerState(Config(app=app, access_log=False), app, loop)
        return lambda: H1Connection(state)
    if server == "uvicorn":
        from uvicorn.config import Config as UConfig
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
        from uvicorn.server import ServerState as UState

        config = UConfig(app=app, access_log=False, http="httptools", loop="uvloop",
                         lifespan="off", ws="websockets-sansio")
        config.load()
        ustate = UState()
        return lambda: HttpToolsProtocol(config, ustate, {}, loop)
    if server == "canned":
        return Canned
    raise SystemExit(f"unknown server {server!r}: dartle, uvicorn or canned")


def serve_http(loop: asyncio.AbstractEventLoop, conns: list[Any], responses: list[int],
               total: int, depth: int) -> None:
    data = REQUEST * depth
    per_round = depth * len(conns)
    if total % per_round:
        raise SystemExit(f"{total} requests are not a multiple of depth x connections")
    sent = [0]
    done = loop.create_future()

    def feed() -> None:
        # Feed the next round from a plain callback (not inside a task, as a real
        # data_received is) once every response of the previous one was written.
        if responses[0] < sent[0]:
            loop.call_soon(feed)
            return
        if sent[0] == total:
            done.set_result(None)
            return
        sent[0] += per_round
        for conn in conns:
            conn.data_received(data)
        loop.call_soon(feed)

    loop.call_soon(feed)
    loop.run_until_complete(done)


def masked(payload: bytes, first: int) -> bytes:
    """A client frame: FIN, `first`'s RSV/opcode bits, masked with a fixed key."""
    key = b"\x11\x22\x33\x44"
    n = len(payload)
    head = bytes((first, 0x80 | n)) if n < 126 else bytes((first, 0xFE)) + n.to_bytes(2, "big")
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + body


def serve_ws(loop: asyncio.AbstractEventLoop, conn: Any, transport: Transport, total: int) -> None:
    transport.protocol = conn
    key = base64.b64encode(os.urandom(16))
    conn.data_received(
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    )
    for _ in range(100):  # the app accepts in a task of its own
        if transport.writes:
            break
        loop.run_until_complete(asyncio.sleep(0))
    head = transport.last.decode("latin-1")
    if " 101 " not in head.split("\r\n", 1)[0] or "permessage-deflate" not in head:
        raise SystemExit(f"no WebSocket with permessage-deflate: {head!r}")
    bits = re.search(r"client_max_window_bits=(\d+)", head)
    compressor = zlib.compressobj(wbits=-int(bits.group(1)) if bits else -15)
    frames = []
    # With context takeover the compressed message is the same from the second one on.
    for _ in range(3):
        data = compressor.compress(WS_MESSAGE) + compressor.flush(zlib.Z_SYNC_FLUSH)
        frames.append(masked(data[:-4], 0xC1))
    assert frames[1] == frames[2]
    sent = [0]
    done = loop.create_future()

    def feed() -> None:
        if transport.writes <= sent[0]:  # the 101 response was the first write
            loop.call_soon(feed)
            return
        if sent[0] == total:
            done.set_result(None)
            return
        frame = frames[min(sent[0], 1)]
        sent[0] += 1
        transport.protocol.data_received(frame)
        loop.call_soon(feed)

    loop.call_soon(feed)
    loop.run_until_complete(done)
    echo = transport.last
    if echo[0] != 0xC1 or echo[1] > 32:  # a compressed text frame, as small as ours
        raise SystemExit(f"unexpected echo frame {echo[:40]!r}")


def main() -> None:
    server, total, depth = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    scenario = sys.argv[4] if len(sys.argv) > 4 else "hello"
    connections = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    import uvloop

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    new_protocol = protocol_factory(server, scenario_app(server, scenario), loop)
    if scenario == "ws":
        conn = new_protocol()
        transport = Transport()
        conn.connection_made(transport)
        serve_ws(loop, conn, transport, total)
        return
    responses = [0]
    conns = []
    for _ in range(connections):
        conn = new_protocol()
        conn.connection_made(Transport(responses))
        conns.append(conn)
    serve_http(loop, conns, responses, total, depth)
    for conn in conns:  # let every connection's tasks end, as a closed socket would
        conn.connection_lost(None)
    loop.run_until_complete(asyncio.sleep(0.001))


if __name__ == "__main__":
    main()
