"""Plain WSGI apps (no framework) for the WSGI bridge tests, and an ASGI control panel.

`wsgi_app` is a bare WSGI callable (dartle must detect it). `app` serves the same WSGI app
through WSGIMiddleware next to /ctl/* endpoints written in ASGI, so that a test can read
what the WSGI side did (and wait for it: an event, never a sleep) even while every WSGI
thread is busy. `capped` adds a 1 KiB body limit; `limited_app()` (a factory) bounds the
thread pool to 2.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

from dartle.asgi import concurrency
from dartle.asgi.concurrency import run_async_from_thread, set_thread_limit
from dartle.asgi.types import Receive, Scope, Send
from dartle.asgi.wsgi import WSGIMiddleware

STALL_SECONDS = 0.5  # a chunk handed over and not followed by the next for this long: stalled


class Record:
    """What one request (by its ?rid=) did on the WSGI side."""

    def __init__(self) -> None:
        self.entered = False
        self.finished = False
        self.closed = 0  # how many times the response iterable's close() ran
        self.chunks = 0  # response chunks produced
        self.pending_since: float | None = None
        self.body_bytes = 0  # request body bytes the app read
        self.error: str | None = None
        self.notes: dict[str, Any] = {}
        self.release = threading.Event()

    def as_json(self) -> dict[str, Any]:
        return {
            "entered": self.entered,
            "finished": self.finished,
            "closed": self.closed,
            "chunks": self.chunks,
            "body_bytes": self.body_bytes,
            "error": self.error,
            "notes": self.notes,
            "stalled": self.stalled(),
        }

    def stalled(self) -> bool:
        since = self.pending_since
        return since is not None and time.monotonic() - since >= STALL_SECONDS


class Board:
    """Records by rid, shared by WSGI threads and the event loop."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.records: dict[str, Record] = {}
        self.active = 0
        self.max_active = 0

    def record(self, rid: str) -> Record:
        with self.cond:
            return self.records.setdefault(rid, Record())

    def changed(self) -> None:
        with self.cond:
            self.cond.notify_all()

    def wait(self, predicate: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                # short slices: "stalled" is a predicate on the clock, not only on changes
                self.cond.wait(min(remaining, 0.05))
        return True


BOARD = Board()


def _query(environ: dict[str, Any]) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}


def _json(start_response: Any, data: Any, status: str = "200 OK") -> list[bytes]:
    body = json.dumps(data).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class Chunks:
    """A response iterable that records its progress and its close()."""

    def __init__(self, record: Record, count: int, size: int, fail_after: int | None = None) -> None:
        self.record = record
        self.count = count
        self.block = b"x" * size
        self.fail_after = fail_after

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        record = self.record
        record.pending_since = None
        if self.fail_after is not None and record.chunks >= self.fail_after:
            raise RuntimeError("the iterable failed on purpose")
        if record.chunks >= self.count:
            record.finished = True
            BOARD.changed()
            raise StopIteration
        record.chunks += 1
        record.pending_since = time.monotonic()
        BOARD.changed()
        return self.block

    def close(self) -> None:
        self.record.closed += 1
        self.record.pending_since = None
        BOARD.changed()


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Any:
    """One WSGI app; the path picks the behaviour."""
    path = environ["PATH_INFO"]
    q = _query(environ)
    record = BOARD.record(q.get("rid", "-"))
    record.entered = True
    BOARD.changed()
    handler = ROUTES.get(path) or (environ_view if path.startswith("/environ/") else None)
    if handler is None:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no such route: " + path.encode("latin-1")]
    return handler(environ, start_response, q, record)


def environ_view(environ: dict[str, Any], start_response: Any, q: dict[str, str], record: Record) -> Any:
    body = environ["wsgi.input"].read()
    shown = {k: v for k, v in environ.items() if isinstance(v, (str, bool, int, tuple))}
    shown["body"] = body.decode("latin-1")
    shown["wsgi.input"] = type(environ["wsgi.input"]).__name__
    shown["wsgi.errors"] = environ["wsgi.errors"] is sys.stderr
    shown["wsgi.file_wrapper"] = environ.get("wsgi.file_wrapper") is not None
    return _json(start_response, shown)


def echo_lines(environ: dict[str, Any], start_response: Any, q: dict[str, str], record: Record) -> Any:
    """Answer each request body line as soon as it is read: input and output interleave."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    stream = environ["wsgi.input"]

    def lines() -> Iterator[bytes]:
        for number, line in enumerate(stream, 1):
            record.body_bytes += len(line)
            yield b"line %d: %s" % (number, line)
        yield b"end after %d bytes\n" % record.body_bytes

    return lines()


def upload(environ: dict[str, Any], start_response: Any, q: dict[str, str], record: Record) -> Any:
    stream = environ["wsgi.input"]
    size = int(q.get("read", "4096"))
    try:
        while chunk := stream.read(size):
            record.body_bytes += len(chunk)
            BOARD.changed()
    except OSError as exc:
        record.error = f"{type(exc).__name__}: {exc}"
        BOARD.changed()
        raise
    finally:
        record.finished = True
        BOARD.changed()
    return _json(start_response, {"bytes": record.body_bytes})


def readline_view(environ: dict[str, Any], start_response: Any, q: dict[str, str], record: Record) -> Any:
    stream = environ["wsgi.input"]
    first = stream.readline(int(q.get("limit", "-1")))
    rest = stream.readlines()
    return _json(start_response, {"first": first.decode(), "rest": [line.decode() for line in rest]})


def stream(environ: dict[str, Any], start_response: Any, q: dict[str, str], record: Record) -> Any:
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    fail_after = int(q["fail_after"]) if "fail_after" in q else None
    return Chunks(record, int(q.get("chunks", "3")), int(q.get("size", "10")), fail_after)


def fail_before(environ: dict[str, Any], start_response: Any, q: dict[str, str], record: Record) -> Any:
    raise RuntimeError("the app failed before start_response")


def exc_info_early(environ: dict[str, Any], start_response: Any, q: dict[str, str], record: Record) -> Any:
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Early", "yes")])
    try:
        raise ValueError("something broke before the body")
    except ValueError:
        start_response("500 Internal Server Error", [("Content-Type", "text/plain"), ("X-Error", "yes")],
                       sys.exc_info())
    return [b"recovered"]


def exc_info_late(environ: dict[str, Any], start_response: Any, q: dict[str, str], record: Record) -> Any:
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"first part;")
    try:
        raise ValueError("broke after the headers went out")
    except ValueError:
        try:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
        except ValueError as exc:
            record.notes["reraised"] = str(exc)
            BOARD.changed()
            raise
    return [b"never"]


def twice(environ: dict[str, Any], start_response: Any, q: dict[str, str], record: Record) -> Any:
    start_response("200 OK", [])
    start_response("201 Created", [])
    return [b"never"]


def write_view(environ: dict[str, Any], start_response: Any, q: dict[str, str], record: Record) -> Any:
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"one;")
    write(b"")
    write(b"two;")
    return [b"three"]


def str_chunk(environ: dict[str, Any], start_response: Any, q: dict[str, str], record: Record) -> Any:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["not bytes"]


def bad_status(environ: dict[str, Any], start_response: Any, q: dict[str, str], record: Record) -> Any:
    start_response("OK", [("Content-Type", "text/plain")])
    return [b"never"]


def bad_header(environ: dict[str, Any], start_response: Any, q: dict[str, str], record: Record) -> Any:
    start_response("200 OK", [("X-Split", "a\r\nInjected: yes")])
    return [b"never"]


def block(environ: dict[str, Any], start_response: Any, q: dict[str, str], record: Record) -> Any:
    with BOARD.cond:
        BOARD.active += 1
        BOARD.max_active = max(BOARD.max_active, BOARD.active)
        BOARD.cond.notify_all()
    try:
        record.release.wait(30)
    finally:
        with BOARD.cond:
            BOARD.active -= 1
            record.finished = True
            BOARD.cond.notify_all()
    return _json(start_response, {"thread": threading.current_thread().name})


def bridge(environ: dict[str, Any], start_response: Any, q: dict[str, str], record: Record) -> Any:
    async def on_loop(x: int) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"doubled": x * 2, "loop_thread": threading.current_thread() is threading.main_thread()}

    result = run_async_from_thread(on_loop, 21)
    result["wsgi_thread"] = threading.current_thread().name
    return _json(start_response, result)


def file_view(environ: dict[str, Any], start_response: Any, q: dict[str, str], record: Record) -> Any:
    handle = tempfile.TemporaryFile()  # noqa: SIM115 - the file wrapper closes it
    handle.write(b"0123456789" * int(q.get("tens", "1")))
    handle.seek(0)
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](handle, 7)


ROUTES = {
    "/environ": environ_view,
    "/echo-lines": echo_lines,
    "/upload": upload,
    "/readline": readline_view,
    "/stream": stream,
    "/fail-before": fail_before,
    "/exc-info-early": exc_info_early,
    "/exc-info-late": exc_info_late,
    "/twice": twice,
    "/write": write_view,
    "/str-chunk": str_chunk,
    "/bad-status": bad_status,
    "/bad-header": bad_header,
    "/block": block,
    "/bridge": bridge,
    "/file": file_view,
}


# -- the ASGI control panel ------------------------------------------------------------------

PREDICATES = {
    "entered": lambda r: r.entered,
    "finished": lambda r: r.finished,
    "closed": lambda r: r.closed > 0,
    "stalled": lambda r: r.stalled(),
    "error": lambda r: r.error is not None,
}


def _pool_queue() -> int:
    executor = concurrency._executor
    return 0 if executor is None else executor._work_queue.qsize()


async def ctl(scope: Scope, receive: Receive, send: Send) -> None:
    q = {k.decode(): v.decode() for k, v in
         (part.split(b"=", 1) for part in scope["query_string"].split(b"&") if b"=" in part)}
    name = scope["path"].removeprefix("/ctl/")
    timeout = float(q.get("timeout", "20"))
    loop = asyncio.get_running_loop()
    status = 200
    if name == "wait":
        record = BOARD.record(q["rid"])
        predicate = PREDICATES[q["until"]]
        # a blocking wait, in the loop's default executor: dartle's pool may be full on purpose
        ok = await loop.run_in_executor(None, BOARD.wait, lambda: predicate(record), timeout)
        data: Any = record.as_json()
        status = 200 if ok else 504
    elif name == "info":
        data = BOARD.record(q["rid"]).as_json()
    elif name == "release":
        BOARD.record(q["rid"]).release.set()
        data = {"released": q["rid"]}
    elif name == "wait-queued":
        want = int(q["n"])
        ok = await loop.run_in_executor(None, BOARD.wait, lambda: _pool_queue() >= want, timeout)
        data = {"queued": _pool_queue()}
        status = 200 if ok else 504
    elif name == "active":
        with BOARD.cond:
            data = {"active": BOARD.active, "max_active": BOARD.max_active}
    elif name == "wait-active":
        want = int(q["n"])
        ok = await loop.run_in_executor(None, BOARD.wait, lambda: BOARD.active >= want, timeout)
        with BOARD.cond:
            data = {"active": BOARD.active, "max_active": BOARD.max_active}
        status = 200 if ok else 504
    elif name == "pid":
        data = {"pid": os.getpid()}
    else:
        data, status = {"error": f"no ctl {name!r}"}, 404
    body = json.dumps(data).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


class WithControls:
    """/ctl/* in ASGI, everything else through the WSGI bridge."""

    def __init__(self, bridge: WSGIMiddleware) -> None:
        self.bridge = bridge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/ctl/"):
            await ctl(scope, receive, send)
        else:
            await self.bridge(scope, receive, send)


app = WithControls(WSGIMiddleware(wsgi_app))
capped = WithControls(WSGIMiddleware(wsgi_app, max_body_size=1024))


def limited_app() -> WithControls:
    set_thread_limit(2)
    return WithControls(WSGIMiddleware(wsgi_app))


def not_an_app() -> None:
    """Takes no arguments: neither ASGI nor WSGI."""


async def async_two(environ: Any, start_response: Any) -> None:
    """Async with two arguments: not something --interface wsgi can serve."""


def mounted_app() -> Any:
    """A dartle App with the WSGI app mounted under /legacy (a factory: imports dartle.web)."""
    from dartle.web import App, Request

    site = App()

    @site.get("/")
    async def home(request: Request) -> str:
        return "dartle home"

    site.mount("/legacy", WSGIMiddleware(wsgi_app))
    return site
