"""Serve N hello-world requests in-process through a server's HTTP/1 protocol object.

No sockets: a fake transport counts writes. Under `valgrind --tool=callgrind` the
instruction count per request is repeatable whatever else the machine does, which makes
it the tool for tuning the hot path on a shared machine (see instructions.sh).

    python benchmarks/inprocess/run.py dartle 16000 16     # server, requests, pipeline depth
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"Hello, world!"})


class Transport:
    """Just enough of an asyncio transport for an HTTP/1 protocol object."""

    def __init__(self) -> None:
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def is_closing(self) -> bool:
        return False

    def close(self) -> None: ...

    def set_write_buffer_limits(self, *args: Any) -> None: ...

    def get_extra_info(self, key: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 5555)}.get(key, default)


def protocol(server: str, loop: asyncio.AbstractEventLoop) -> Any:
    if server == "dartle":
        from dartle.config import Config
        from dartle.server.http1 import H1Connection
        from dartle.server.serve import ServerState

        return H1Connection(ServerState(Config(app=app, access_log=False), app, loop))
    if server == "uvicorn":
        from uvicorn.config import Config as UConfig
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
        from uvicorn.server import ServerState as UState

        config = UConfig(app=app, access_log=False, http="httptools", loop="uvloop", lifespan="off")
        config.load()
        return HttpToolsProtocol(config, UState(), {}, loop)
    raise SystemExit(f"unknown server {server!r}: dartle or uvicorn")


def main() -> None:
    server, total, depth = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    import uvloop

    loop = uvloop.new_event_loop()
    conn = protocol(server, loop)
    transport = Transport()
    conn.connection_made(transport)
    data = REQUEST * depth
    batches = total // depth
    sent = [0]
    done = loop.create_future()

    def feed() -> None:
        # Feed the next batch from a plain callback (not inside a task, as a real
        # data_received is) once every response of the previous one was written.
        if transport.writes < sent[0]:
            loop.call_soon(feed)
            return
        if sent[0] // depth == batches:
            done.set_result(None)
            return
        sent[0] += depth
        conn.data_received(data)
        loop.call_soon(feed)

    loop.call_soon(feed)
    loop.run_until_complete(done)


if __name__ == "__main__":
    main()
