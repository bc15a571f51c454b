"""A real redis-server for the pub/sub tests, and WebSocket chat clients.

The server runs from its Debian binary on a free loopback port in a temp dir, without
persistence. Readiness is its "ready to accept connections" line, read from its output
by a thread (an event, not a sleep); it is stopped or killed by its PID.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

# "Ready to accept connections tcp", or "...now ready to accept connections at PATH".
READY = b"ready to accept connections"
START_TIMEOUT = 20.0
# `dartle run --workers 2` prints its address once the first worker serves; this is both.
BOTH_WORKERS_SERVING = rb"(?s)Worker \[\d+\] serving.*Worker \[\d+\] serving"


class RedisServer:
    """One redis-server on 127.0.0.1:`port`; `kill()` and `start()` again on the same port."""

    def __init__(self, binary: str, port: int, directory: Path, unix_socket: Path | None = None) -> None:
        self.binary = binary
        self.port = port  # 0 with a unix socket: no TCP at all
        self.directory = directory
        self.unix_socket = unix_socket
        self.proc: subprocess.Popen[bytes] | None = None
        self.output: list[bytes] = []

    @property
    def url(self) -> str:
        if self.unix_socket is not None:
            return f"unix://{self.unix_socket}?db=0"
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        proc = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
                *(["--unixsocket", str(self.unix_socket)] if self.unix_socket else []),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.proc = proc
        ready = threading.Event()

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:  # also keeps the pipe drained while it runs
                self.output.append(line)
                if READY in line.lower():
                    ready.set()
            ready.set()  # exited: let start() look at why

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(START_TIMEOUT) or proc.poll() is not None:
            self.kill()
            raise AssertionError("redis-server did not start:\n" + b"".join(self.output).decode())

    def kill(self) -> None:
        """SIGKILL: the connections drop as they would when a machine dies."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.kill()


@contextmanager
def redis_server(binary: str, port: int, directory: Path) -> Iterator[RedisServer]:
    server = RedisServer(binary, port, directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class ChatClient:
    """A WebSocket client of examples/chat.py that sorts what it receives by type."""

    def __init__(self, ws: ClientConnection, welcome: dict[str, Any]) -> None:
        self.ws = ws
        self.welcome = welcome
        self.worker: int = welcome["worker"]

    @classmethod
    async def open(cls, base_url: str, room: str, name: str) -> ChatClient:
        url = base_url.replace("http://", "ws://", 1) + f"/chat/ws?room={room}&name={name}"
        ws = await connect(url, open_timeout=30, proxy=None, max_queue=None)
        welcome = json.loads(await ws.recv())
        assert welcome["type"] == "welcome", welcome
        return cls(ws, welcome)

    async def say(self, text: str) -> None:
        await self.ws.send(json.dumps({"text": text}))

    async def next(self, kind: str) -> dict[str, Any]:
        """The next message of type `kind`; a message of another type is an error."""
        message = json.loads(await self.ws.recv())
        assert message["type"] == kind, f"expected {kind!r}, got {message}"
        return message  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self.ws.close()


async def open_clients(base_url: str, room: str, count: int, prefix: str = "c") -> list[ChatClient]:
    """`count` chat clients of `room`, connected a few dozen at a time."""
    clients: list[ChatClient] = []
    for start in range(0, count, 25):
        batch = range(start, min(start + 25, count))
        clients += await asyncio.gather(*(ChatClient.open(base_url, room, f"{prefix}{i}") for i in batch))
    return clients
