"""The WebSocket load generator: N clients, each sends a text message and waits for its echo.

    python -m benchmarks.wsload --port P --clients 64 --message TEXT --duration 10 --warmup 2
                                [--deflate]

It runs in the bench venv, pinned to the load core, as its own process: a lean asyncio
client on uvloop (raw sockets, each connection's frame masked once) so that it is not
the bottleneck sooner than it has to be. Every echo is compared with what was sent.
With --deflate it offers permessage-deflate (RFC 7692) and, when the server accepts,
compresses each message as a browser would (context kept between messages) and
decompresses the echoes; a server that declines is a failure of that scenario.
It prints `START` when the warm-up is over and the measured window opens, then `END`
and a JSON summary when it closes; the harness reads the server's CPU time at both.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import subprocess
import time
import zlib
from typing import Any, cast

from benchmarks.benchenv import ROOT
from benchmarks.load import LoadResult, Window, latency_summary, stalled
from benchmarks.probes import masked_frame
from benchmarks.scenarios import Scenario

HANDSHAKE_TIMEOUT = 30.0


class EchoClient(asyncio.Protocol):
    """One connection: the handshake, then send the message and await its echo, in a loop."""

    def __init__(self, port: int, path: str, message: bytes, stats: Stats,
                 deflate: bool = False) -> None:
        self.port = port
        self.path = path
        self.message = message
        self.frame = masked_frame(0x1, message)
        self.stats = stats
        self.deflate = deflate
        self.compressor: Any = None  # zlib objects, once permessage-deflate is agreed
        self.decompressor: Any = None
        self.buffer = bytearray()
        self.open = False
        self.stopping = False
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        key = base64.b64encode(os.urandom(16)).decode()
        offer = ("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
                 if self.deflate else "")
        self.transport.write((
            f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"{offer}\r\n"
        ).encode())

    def _agree(self, head: str) -> str | None:
        """Set up compression from the server's answer; a problem if it declined."""
        extensions = [line.split(":", 1)[1] for line in head.split("\r\n")
                      if line.lower().startswith("sec-websocket-extensions:")]
        agreed = next((value for value in extensions if "permessage-deflate" in value), None)
        if agreed is None:
            return "the server declined permessage-deflate"
        bits = re.search(r"client_max_window_bits=(\d+)", agreed)
        self.compressor = zlib.compressobj(wbits=-int(bits.group(1)) if bits else -15)
        bits = re.search(r"server_max_window_bits=(\d+)", agreed)
        self.decompressor = zlib.decompressobj(wbits=-int(bits.group(1)) if bits else -15)
        return None

    def send(self) -> None:
        assert self.transport is not None
        self.sent_at = time.perf_counter()
        if self.compressor is None:
            self.transport.write(self.frame)
            return
        data = self.compressor.compress(self.message) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
        self.transport.write(masked_frame(0x1, data[:-4], compressed=True))  # RFC 7692 7.2.1

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.open:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).decode("latin-1")
            del buffer[:end + 4]
            status = head.split("\r\n", 1)[0]
            if status.split(" ")[1:2] != ["101"]:
                self.ready.set_exception(RuntimeError(f"handshake answered {status!r}"))
                return
            problem = self._agree(head) if self.deflate else None
            if problem:
                self.ready.set_exception(RuntimeError(problem))
                return
            self.open = True
            self.ready.set_result(None)
            self.send()
        while len(buffer) >= 2:
            length, start = buffer[1] & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length, start = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length, start = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < start + length:
                return
            opcode, compressed = buffer[0] & 0x0F, buffer[0] & 0x40
            payload = bytes(buffer[start:start + length])
            del buffer[:start + length]
            if compressed and self.decompressor is not None:
                payload = self.decompressor.decompress(payload + b"\x00\x00\xff\xff")
            if opcode == 0x1 or opcode == 0x2:
                self.stats.echoed(time.perf_counter() - self.sent_at, payload == self.message)
                if not self.stopping:
                    self.send()
            elif opcode == 0x8:
                self.stats.closed += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.stopping:
            self.stats.closed += 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed during the handshake"))


class Stats:
    def __init__(self) -> None:
        self.messages = 0
        self.wrong = 0
        self.closed = 0
        self.latencies: list[float] = []
        self.recording = False

    def echoed(self, seconds: float, right: bool) -> None:
        self.messages += 1
        if not right:
            self.wrong += 1
        if self.recording:
            self.latencies.append(seconds)

    def reset(self) -> None:
        self.messages = self.wrong = 0
        self.latencies.clear()
        self.recording = True


async def _drive(port: int, path: str, clients: int, message: bytes, duration: float,
                 warmup: float, deflate: bool) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    stats = Stats()
    conns = []
    for _ in range(clients):
        _, conn = await loop.create_connection(
            lambda: EchoClient(port, path, message, stats, deflate), "127.0.0.1", port)
        conns.append(conn)
    # a server that never answers the handshake must not hang the benchmark
    await asyncio.wait_for(asyncio.gather(*(conn.ready for conn in conns)), HANDSHAKE_TIMEOUT)
    await asyncio.sleep(warmup)
    stats.reset()
    cpu, start = time.process_time(), time.perf_counter()
    print("START", flush=True)
    await asyncio.sleep(duration)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    messages, latencies = stats.messages, stats.latencies
    for conn in conns:
        conn.stopping = True
        if conn.transport is not None:
            conn.transport.close()
    summary: dict[str, Any] = {"messages": messages, "seconds": seconds, "cpu_seconds": cpu,
                               "wrong": stats.wrong, "closed": stats.closed}
    summary["latency_us"] = latency_summary([latency * 1e6 for latency in latencies])
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--message", required=True, help="the text each client sends")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--deflate", action="store_true", help="offer permessage-deflate")
    args = parser.parse_args()
    import uvloop

    summary = uvloop.run(_drive(args.port, args.path, args.clients, args.message.encode(),
                                args.duration, args.warmup, args.deflate))
    print("END " + json.dumps(summary), flush=True)


def measure(python: str, scenario: Scenario, port: int, duration: float, warmup: float,
            cpus: str | None, window: Window) -> LoadResult:
    """Run the client against 127.0.0.1:port; the window spans its measured seconds."""
    cmd = ["taskset", "-c", cpus] if cpus is not None else []
    cmd += [python, "-m", "benchmarks.wsload", "--port", str(port), "--path",
            scenario.request.path, "--clients", str(scenario.connections),
            "--message", scenario.request.body.decode(), "--duration", str(duration),
            "--warmup", str(warmup), *(["--deflate"] if scenario.deflate else [])]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    output = []
    started = False
    summary: dict[str, Any] | None = None
    try:
        for line in proc.stdout:  # the client stops by itself after warm-up + duration
            output.append(line)
            if line.strip() == "START":
                window.start()
                started = True
            elif line.startswith("END ") and started:
                window.stop()
                summary = json.loads(line[4:])
        proc.wait()  # its output ended: it is exiting
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = "".join(output)
    if summary is None:
        if started:
            window.stop()
        return LoadResult(output=text, problems=[
            f"the WebSocket client failed (status {proc.returncode}): {text.strip()[-300:]}"])
    result = LoadResult(requests=summary["messages"], seconds=summary["seconds"],
                        requests_per_second=summary["messages"] / summary["seconds"],
                        latency_us=summary.get("latency_us", {}),
                        cpu_seconds=summary["cpu_seconds"], output=text)
    if summary["wrong"]:
        result.problems.append(f"{summary['wrong']} echoes differed from the message sent")
    if summary["closed"]:
        result.problems.append(f"the server closed {summary['closed']} connections")
    if not result.requests:
        result.problems.append("no echoes: connections stalled")
    problem = stalled(result, scenario)
    if problem:
        result.problems.append(problem)
    return result


if __name__ == "__main__":
    main()
