"""The floor: a uvloop protocol that answers every request with the same canned bytes.

No ASGI, no parser, no scope: it only counts the blank lines that end request heads
(GET requests without a body) and writes one canned response per head. What a real
server costs per request above this is the cost of being a real server; the design
aims at this figure, not at uvicorn's.

    python -m benchmarks.apps.canned --host 127.0.0.1 --port 8000
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import cast

import uvloop

RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: text/plain\r\n"
    b"content-length: 13\r\n"
    b"\r\n"
    b"Hello, world!"
)
HEAD_END = b"\r\n\r\n"


class Canned(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.pending = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's: not a subclass

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        data = self.pending + data if self.pending else data
        heads = data.count(HEAD_END)
        if not heads:
            self.pending = data
            return
        self.pending = data[data.rindex(HEAD_END) + 4:]
        self.transport.write(RESPONSE * heads)
        if b"onnection: close" in data:  # the harness's readiness check asks for it
            self.transport.close()


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Canned, host, port, backlog=1024)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print(f"canned running on http://{host}:{port}", flush=True)
    await stop.wait()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
