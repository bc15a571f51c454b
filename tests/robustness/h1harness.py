"""dartle's HTTP/1.1 request path in-process, for fuzzing: bytes in, oracle verdict out.

`check(data, cuts)` feeds `data` to a real `H1Connection` (httptools, `Cycle`, `Runner`:
everything between the socket and the app), cut into reads at `cuts`, and holds the result
against a strict reading of RFC 9112 (rfc9112.py). It raises `OracleError` when:

- the server delivered to the app (scope plus whole body) a request the RFC reading says
  must not be processed, or delivered one that differs from it (method, target, version,
  every header in order, the de-chunked body), or broke an ASGI scope rule;
- a stream of nothing but valid, complete requests was not served in full;
- the bytes written back are not a well-formed sequence of HTTP/1.1 responses: one 200
  per delivered request, in order, then at most one error response, then the close;
- anything raised out of the protocol, anything was logged at ERROR, the connection
  stalled with reading paused, or a task outlived the connection.

Only the transport is simulated (a few dozen lines below), because a coverage-guided
fuzzer needs thousands of runs a second; the black-box tests cover the real sockets.
The event loop is stock asyncio (the simulated transport needs no I/O), run until idle.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any

from dartle.config import Config
from dartle.server.http1 import H1Connection
from dartle.server.serve import ServerState
from tests.apps.recorder import scope_violations
from tests.robustness.rfc9112 import Reading, read_stream


class OracleError(AssertionError):
    """The server did something RFC 9112 or ASGI forbids, for this input."""


class Transport(asyncio.Transport):
    """A transport that records what is written and honours pause/close, without a socket."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.loop = loop
        self.protocol: Any = None
        self.out = bytearray()
        self.closed = False
        self.paused = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 40000)}.get(name, default)

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_protocol(self) -> Any:
        return self.protocol

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self.closed:
            self.out += data

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.loop.call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def is_reading(self) -> bool:
        return not self.paused

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


def connect(state: ServerState) -> tuple[H1Connection, Transport]:
    """A new `H1Connection` of `state`'s server on a simulated transport."""
    transport = Transport(state.loop)
    conn = H1Connection(state)
    transport.set_protocol(conn)
    conn.connection_made(transport)
    return conn, transport


def settle(loop: asyncio.AbstractEventLoop) -> None:
    """Run `loop` until nothing is ready to run (for apps that never wait on a timer)."""
    for _ in range(100_000):
        loop.call_soon(loop.stop)
        loop.run_forever()
        if not loop._ready:  # type: ignore[attr-defined]
            return
    raise OracleError("the event loop never went idle (a busy loop)")


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


@dataclass
class Outcome:
    delivered: list[tuple[dict[str, Any], bytes]] = field(default_factory=list)
    out: bytes = b""
    closed: bool = False


class Harness:
    """One event loop and one server state, reused across inputs (a fuzzer runs many)."""

    def __init__(self, ws: str = "none") -> None:
        self.loop = asyncio.new_event_loop()
        self.config = Config(loop="asyncio", lifespan="off", access_log=False, ws=ws)  # type: ignore[arg-type]
        self.state = ServerState(self.config, self.app, self.loop)
        self.delivered: list[tuple[dict[str, Any], bytes]] = []
        self.errors = _Errors()
        logging.getLogger("dartle.error").addHandler(self.errors)

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.delivered.append((scope, bytes(body)))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    def settle(self) -> None:
        settle(self.loop)

    def run(self, data: bytes, cuts: list[int]) -> tuple[Outcome, Outcome]:
        """Feed `data` in pieces; returns the outcome before and after the client's EOF."""
        self.delivered = []
        self.errors.records.clear()
        conn, transport = connect(self.state)
        bounds = sorted({c for c in cuts if 0 < c < len(data)})
        for start, end in zip([0, *bounds], [*bounds, len(data)], strict=False):
            self.settle()
            if transport.closed:
                break
            if transport.paused:
                raise OracleError("reading stayed paused with nothing left to run (a stall)")
            transport.protocol.data_received(data[start:end])
        self.settle()
        before = Outcome(list(self.delivered), bytes(transport.out), transport.closed)
        if not transport.closed:
            if not transport.protocol.eof_received():
                transport.close()
            self.settle()
        after = Outcome(list(self.delivered), bytes(transport.out), transport.closed)
        leftover = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        if leftover:
            for task in leftover:
                task.cancel()
            self.settle()
            raise OracleError(f"tasks outlived the connection: {leftover}")
        if conn in self.state.connections:
            raise OracleError("the connection is still registered after it closed")
        if self.errors.records:
            raise OracleError("logged at ERROR: " + self.errors.records[0][:2000])
        return before, after


_HARNESS: Harness | None = None


def harness() -> Harness:
    global _HARNESS
    if _HARNESS is None:
        _HARNESS = Harness()
    return _HARNESS


# A valid request queued behind another must never be answered with the error meant for a
# later, invalid one (or lost to bytes sent after "Connection: close"). The server once did
# that (docs/robustness.md); DARTLE_FUZZ_STRICT=0 tolerates it again for triage.
STRICT = os.environ.get("DARTLE_FUZZ_STRICT", "1") not in ("", "0")


def encode_input(stream: bytes, cuts: list[int]) -> bytes:
    """A fuzz input: a count byte, 2-byte cut offsets, then the stream (see decode_input)."""
    cuts = cuts[:8]
    return bytes([len(cuts)]) + b"".join(c.to_bytes(2, "big") for c in cuts) + stream


def decode_input(data: bytes) -> tuple[bytes, list[int]]:
    """Split a fuzz input into the request stream and where to cut it into reads."""
    if not data:
        return b"", []
    count = data[0] % 9
    header = data[1 : 1 + 2 * count]
    stream = data[1 + 2 * count :]
    cuts = [
        int.from_bytes(header[i : i + 2], "big") % (len(stream) + 1) for i in range(0, len(header) - 1, 2)
    ]
    return stream, cuts


def check(data: bytes, cuts: list[int]) -> Reading:
    """Run `data` through the server and raise OracleError on any violation (module doc)."""
    reading = read_stream(data)
    try:
        before, after = harness().run(data, cuts)
    except OracleError:
        raise
    except Exception as exc:
        raise OracleError(f"{type(exc).__name__} out of the protocol: {exc}") from exc
    _check_delivered(reading, after.delivered)
    responses, rest = _parse_responses(after.out, [s["method"] for s, _ in after.delivered])
    _check_responses(responses, rest, after)
    errors = [status for status, _ in responses if status != 200]
    if errors and reading.stop == "end":
        raise OracleError(f"an error response ({errors[0]}) to valid input; wrote {after.out[:300]!r}")
    if errors and STRICT and len(after.delivered) < len(reading.requests):
        raise OracleError(
            f"the {errors[0]} took the place of valid request {len(after.delivered)}'s response"
        )
    if reading.stop == "end" and len(before.delivered) != len(reading.requests):
        raise OracleError(
            f"valid requests not served: {len(before.delivered)} of {len(reading.requests)} "
            f"delivered; wrote {before.out[:300]!r}"
        )
    return reading


def _check_delivered(reading: Reading, delivered: list[tuple[dict[str, Any], bytes]]) -> None:
    for index, (scope, body) in enumerate(delivered):
        problems = scope_violations(scope)
        if problems:
            raise OracleError(f"request {index}: ASGI scope violations {problems}")
        if index >= len(reading.requests):
            if reading.stop == "lenient" and index == len(reading.requests):
                return  # the server took a leniency the RFC allows; compare no further
            raise OracleError(
                f"request {index} was delivered, but the RFC reading stops before it "
                f"({reading.stop}: {reading.why}); the app got {scope['method']} "
                f"{scope['raw_path']!r}?{scope['query_string']!r} with {len(body)} body bytes"
            )
        want = reading.requests[index]
        got = (
            scope["method"].encode(),
            scope["raw_path"],
            scope["query_string"],
            scope["http_version"],
            [tuple(h) for h in scope["headers"]],
            body,
        )
        expected = (want.method, want.raw_path, want.query, want.version, want.headers, want.body)
        if got != expected:
            raise OracleError(f"request {index} reached the app as\n  {got!r}\nnot as read\n  {expected!r}")


_STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) [^\r\n]*\r\n")


def _parse_responses(out: bytes, methods: list[str]) -> tuple[list[tuple[int, dict[bytes, bytes]]], bytes]:
    """Split what the server wrote into (status, headers) responses; strict framing."""
    responses = []
    at = 0
    while at < len(out):
        match = _STATUS_LINE.match(out, at)
        if match is None:
            raise OracleError(f"not a status line at byte {at}: {out[at : at + 80]!r}")
        end = out.find(b"\r\n\r\n", match.end() - 2)
        if end < 0:
            raise OracleError(f"an incomplete response head: {out[at : at + 200]!r}")
        headers: dict[bytes, bytes] = {}
        block = out[match.end() : end]
        for line in block.split(b"\r\n") if block else []:
            name, colon, value = line.partition(b": ")
            if not colon or name != name.lower() or (name in headers and name != b"set-cookie"):
                raise OracleError(f"a malformed or repeated response field {line!r}")
            headers[name] = value
        status = int(match.group(1))
        at = end + 4
        if status == 100:
            continue
        method = methods[len([r for r in responses if r[0] == 200])] if status == 200 else "GET"
        if method != "HEAD" and status not in (204, 304):
            if b"content-length" not in headers:
                raise OracleError(f"a {status} response without Content-Length: {headers}")
            at += int(headers[b"content-length"])
            if at > len(out):
                raise OracleError("a response body shorter than its Content-Length")
        responses.append((status, headers))
    return responses, out[at:]


def _check_responses(responses: list[tuple[int, dict[bytes, bytes]]], rest: bytes, outcome: Outcome) -> None:
    statuses = [status for status, _ in responses]
    served = statuses.count(200)
    if served != len(outcome.delivered):
        raise OracleError(f"{len(outcome.delivered)} requests delivered, {served} answered 200: {statuses}")
    errors = [s for s in statuses if s != 200]
    if errors:
        if len(errors) > 1 or statuses[-1] == 200:
            raise OracleError(f"error responses must come last, and once: {statuses}")
        if not 400 <= errors[0] <= 505:
            raise OracleError(f"unexpected error status {errors[0]}")
        if responses[-1][1].get(b"connection") != b"close" or not outcome.closed:
            raise OracleError("an error response must say connection: close, and close")
    if rest:
        raise OracleError(f"bytes after the last response: {rest[:100]!r}")
