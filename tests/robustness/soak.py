"""A bounded mixed load for the soak test: HTTP/1.1 and WebSocket clients that check everything.

One asyncio event loop in the test process runs every client. HTTP clients keep a
connection for a few requests, then open a new one (churn), and pick each request from a
mix: Content-Length echo, chunked echo, pipelined echoes, streamed download. Every
response is checked byte for byte. WebSocket clients send text and binary messages of
varied sizes and check that each comes back, in order. Counts and errors are kept per kind.
HTTP/2 clients (httpx, h2c by prior knowledge) keep one connection each and run several
echo and download streams on it at once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from websockets.asyncio.client import connect


@dataclass
class Tally:
    done: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def error(self, kind: str, text: str) -> None:
        if len(self.errors) < 50:
            self.errors.append(f"{kind}: {text}")
        self.done[f"{kind} errors"] += 1


class HttpClient:
    """A minimal HTTP/1.1 client on asyncio streams, strict about framing."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> HttpClient:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass

    async def response(self) -> tuple[int, bytes]:
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
        if b"content-length" in headers:
            return status, await self.reader.readexactly(int(headers[b"content-length"]))
        assert headers.get(b"transfer-encoding") == b"chunked", headers
        body = bytearray()
        while True:
            size = int((await self.reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
            if size == 0:
                assert await self.reader.readuntil(b"\r\n") == b"\r\n"
                return status, bytes(body)
            body += await self.reader.readexactly(size)
            assert await self.reader.readexactly(2) == b"\r\n"


def _post(path: str, body: bytes, chunked: bool, rng: random.Random) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: soak\r\n".encode()
    if not chunked:
        return head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    out = head + b"Transfer-Encoding: chunked\r\n\r\n"
    at = 0
    while at < len(body):
        step = rng.randint(1, max(1, len(body) // 3))
        out += b"%x\r\n%s\r\n" % (len(body[at : at + step]), body[at : at + step])
        at += step
    return out + b"0\r\n\r\n"


async def http_worker(host: str, port: int, until: float, tally: Tally, seed: int) -> None:
    rng = random.Random(seed)
    while time.monotonic() < until:
        try:
            client = await HttpClient.open(host, port)
        except OSError as exc:
            tally.error("http connect", repr(exc))
            return
        try:
            for _ in range(rng.randint(1, 30)):
                if time.monotonic() >= until:
                    break
                await one_exchange(client, rng, tally)
        except (OSError, asyncio.IncompleteReadError, AssertionError, ValueError) as exc:
            tally.error("http", repr(exc))
        finally:
            await client.close()


async def one_exchange(client: HttpClient, rng: random.Random, tally: Tally) -> None:
    kind = rng.choice(["echo", "chunked", "pipelined", "stream"])
    if kind == "stream":
        count, size = rng.randint(1, 20), rng.randint(1, 8192)
        client.writer.write(f"GET /soak/stream?n={count}&size={size} HTTP/1.1\r\nHost: soak\r\n\r\n".encode())
        status, body = await client.response()
        want = b"".join(bytes((i % 256,)) * size for i in range(count))
        if status != 200 or body != want:
            tally.error(kind, f"status {status}, {len(body)} bytes, want {len(want)}")
        tally.done[kind] += 1
        return
    batch = 3 if kind == "pipelined" else 1
    bodies = [rng.randbytes(rng.randint(0, 20000)) for _ in range(batch)]
    chunked = kind == "chunked"
    path = "/soak/echo?chunked=1" if chunked else "/soak/echo"
    client.writer.write(b"".join(_post(path, body, chunked, rng) for body in bodies))
    for body in bodies:
        status, got = await client.response()
        if status != 200 or got != body:
            tally.error(kind, f"status {status}, echoed {len(got)} of {len(body)} bytes")
        tally.done[kind] += 1


async def h2_worker(host: str, port: int, until: float, tally: Tally, seed: int) -> None:
    """One HTTP/2 connection at a time, with 1-8 concurrent streams per round, every body checked."""
    rng = random.Random(seed)
    while time.monotonic() < until:
        try:
            async with httpx.AsyncClient(
                base_url=f"http://{host}:{port}", http1=False, http2=True, timeout=30
            ) as client:
                for _ in range(rng.randint(1, 30)):
                    if time.monotonic() >= until:
                        break
                    streams = [h2_exchange(client, rng, tally) for _ in range(rng.randint(1, 8))]
                    await asyncio.gather(*streams)
        except (httpx.HTTPError, OSError) as exc:
            tally.error("h2", repr(exc))


async def h2_exchange(client: httpx.AsyncClient, rng: random.Random, tally: Tally) -> None:
    try:
        if rng.random() < 0.3:
            count, size = rng.randint(1, 20), rng.randint(1, 8192)
            response = await client.get("/soak/stream", params={"n": count, "size": size})
            want = b"".join(bytes((i % 256,)) * size for i in range(count))
        else:
            want = rng.randbytes(rng.randint(0, 100_000))
            response = await client.post("/soak/echo", content=want)
    except httpx.TimeoutException as exc:
        raise httpx.TimeoutException(f"{exc!r}; client state: {h2_windows(client)}") from exc
    if response.http_version != "HTTP/2" or response.status_code != 200 or response.content != want:
        tally.error("h2", f"{response.http_version} {response.status_code}, "
                    f"{len(response.content)} bytes, want {len(want)}")
    tally.done["h2 streams"] += 1


def h2_windows(client: httpx.AsyncClient) -> str:
    """What the client's HTTP/2 connections think of their send windows (to tell, when a
    stream times out, whether the client was waiting for window the server had granted)."""
    try:
        out = []
        for pooled in client._transport._pool.connections:  # type: ignore[attr-defined]
            conn = getattr(pooled, "_connection", None)
            h2 = getattr(conn, "_h2_state", None)
            if h2 is None:
                continue
            streams = {sid: h2.local_flow_control_window(sid)
                       for sid, stream in h2.streams.items() if not stream.closed}
            out.append(f"connection window {h2.outbound_flow_control_window}, "
                       f"stream windows {streams}, events queued {conn._events}")
        return "; ".join(out) or "no HTTP/2 connection"
    except Exception as exc:  # diagnostics only: never hide the original error
        return f"unavailable ({exc!r})"


async def ws_worker(url: str, until: float, tally: Tally, seed: int) -> None:
    rng = random.Random(seed)
    while time.monotonic() < until:
        try:
            async with connect(url, max_size=None, compression=rng.choice([None, "deflate"])) as ws:
                for _ in range(rng.randint(10, 200)):
                    if time.monotonic() >= until:
                        break
                    burst = [
                        rng.randbytes(rng.randint(0, 30000))
                        if rng.random() < 0.5
                        else "é" * rng.randint(0, 5000)
                        for _ in range(rng.randint(1, 4))
                    ]
                    for message in burst:
                        await ws.send(message)
                    for message in burst:
                        echoed = await ws.recv()
                        if echoed != message:
                            tally.error("ws", f"message {len(message)} long came back as {len(echoed)}")
                        tally.done["ws messages"] += 1
        except Exception as exc:  # any failure of a WebSocket session is a soak error
            tally.error("ws", repr(exc))


async def run_load(
    host: str,
    port: int,
    seconds: float,
    http_clients: int,
    ws_clients: int,
    on_tick: Callable[[float], None] | None = None,
    seed: int = 0,
    h2_clients: int = 0,
) -> Tally:
    """Run the mixed load for `seconds`; `on_tick(elapsed)` is called about every 0.5 s."""
    tally = Tally()
    start = time.monotonic()
    until = start + seconds
    url = f"ws://{host}:{port}/soak/ws"
    tasks = [
        asyncio.ensure_future(http_worker(host, port, until, tally, seed * 1000 + i))
        for i in range(http_clients)
    ]
    tasks += [
        asyncio.ensure_future(ws_worker(url, until, tally, seed * 1000 + 500 + i)) for i in range(ws_clients)
    ]
    tasks += [
        asyncio.ensure_future(h2_worker(host, port, until, tally, seed * 1000 + 700 + i))
        for i in range(h2_clients)
    ]
    while not all(task.done() for task in tasks):
        await asyncio.wait(tasks, timeout=0.5)
        if on_tick is not None:
            on_tick(time.monotonic() - start)
    for task in tasks:
        if task.exception() is not None:
            tally.error("worker", repr(task.exception()))
    return tally
