"""The app behind tests/robustness: the recorder, plus faults, soak endpoints and WebSocket echo.

Plain ASGI (no dartle import). Request handling is the recorder's (tests/apps/recorder.py):
this module adds handlers to its dispatch table, so every request here is recorded and
checked against the ASGI spec just like the black-box suite's. On top of that:

Recorded handlers (path after root_path):
  /robust-echo        read the whole body, answer JSON {"scope": ..., "body": latin-1 text}
  /fault              fail at one step of the cycle: ``step`` = call | receive | body | start |
                      chunk | final, ``exc`` = error | cancel | exit, ``sync=1`` to fail before
                      the first await (the server's eager path) instead of after one
  /late-answer        read until http.disconnect, then answer: the send must raise the
                      server's OSError (recorded as the request's send_error)
  /unread             receive once, wait for /ctl/release, then answer (``then=raise``:
                      raise) without reading the rest of the body

Unrecorded endpoints (no per-request state, so a soak does not grow the app's memory):
  /robust/stats       {"pid", "tasks", "fds", "rss_kib"}; ``until_tasks=N`` / ``until_fds=N``
                      wait (bounded by ``timeout``) until the counts are down to N
  /robust/pid         the worker's PID as plain text (what tests/ops/support.Load reads)
  /robust/check       ``rids=a,b``: for each, whether the app saw its scope and its whole body
  /robust/block       block the event loop for ``seconds`` (a hostile app, for --backlog tests)
  /soak/echo          echo the body (``chunked=1``: streamed back as it arrives)
  /soak/stream        ``n`` chunks of ``size`` bytes, each byte the chunk's index mod 256

WebSocket: any path echoes every message back as it came.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any
from urllib.parse import parse_qs

from tests.apps import recorder
from tests.apps.recorder import (
    BOARD,
    HANDLERS,
    RECORDS,
    Receive,
    Record,
    Scope,
    Send,
    qint,
    qstr,
    read_body,
    respond,
    respond_json,
)


class AppExit(SystemExit):
    """What /fault?exc=exit raises: a BaseException that is not an Exception."""


def fault_exception(kind: str, rid: str) -> BaseException:
    """The exception a fault route raises: `exc=error|cancel|exit`."""
    if kind == "cancel":
        return asyncio.CancelledError(f"fault-{rid}")
    if kind == "exit":
        return AppExit(f"fault-{rid}")
    return RuntimeError(f"fault-{rid}")


async def h_robust_echo(scope: Scope, receive: Receive, send: Send, rec: Record, q: Any) -> None:
    body = await read_body(receive)
    payload = json.dumps({"scope": rec.scope, "body": body.decode("latin-1")}).encode()
    await respond(send, 200, payload, b"application/json")


async def h_fault(scope: Scope, receive: Receive, send: Send, rec: Record, q: Any) -> None:
    step = qstr(q, "step")
    error = fault_exception(qstr(q, "exc", "error"), rec.rid)
    if qstr(q, "sync") != "1":
        await asyncio.sleep(0)  # fail from the task that drives the app, not the eager start
    if step == "call":
        raise error
    message = await receive()
    if step == "receive":
        raise error
    while message.get("more_body", False):
        message = await receive()
    if step == "body":
        raise error
    await send({"type": "http.response.start", "status": 200, "headers": []})
    if step == "start":
        raise error
    await send({"type": "http.response.body", "body": b"first-chunk;", "more_body": True})
    if step == "chunk":
        raise error
    await send({"type": "http.response.body", "body": b"last-chunk"})
    if step == "final":
        raise error


async def h_late_answer(scope: Scope, receive: Receive, send: Send, rec: Record, q: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"too late"})


async def h_unread(scope: Scope, receive: Receive, send: Send, rec: Record, q: Any) -> None:
    await receive()
    await asyncio.wait_for(rec.released.wait(), 60)
    if qstr(q, "then") == "raise":
        raise RuntimeError(f"unread-{rec.rid}")
    await respond(send, 200, b"body left unread")


HANDLERS["/robust-echo"] = h_robust_echo
HANDLERS["/fault"] = h_fault
HANDLERS["/late-answer"] = h_late_answer
HANDLERS["/unread"] = h_unread


# ---------------------------------------------------------------------------- unrecorded


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def _stats() -> dict[str, int]:
    return {
        "pid": os.getpid(),
        "tasks": len(asyncio.all_tasks()),
        "fds": len(os.listdir("/proc/self/fd")),
        "rss_kib": _rss_kib(),
    }


async def robust_stats(send: Send, q: dict[str, list[str]]) -> None:
    until_tasks = qint(q, "until_tasks", -1)
    until_fds = qint(q, "until_fds", -1)

    def settled() -> bool:
        now = _stats()
        return (until_tasks < 0 or now["tasks"] <= until_tasks) and (until_fds < 0 or now["fds"] <= until_fds)

    ok = await BOARD.wait_for(settled, float(qstr(q, "timeout", "10")))
    await respond_json(send, _stats(), 200 if ok else 504)


async def robust_check(send: Send, q: dict[str, list[str]]) -> None:
    out = {}
    for rid in filter(None, qstr(q, "rids").split(",")):
        rec = RECORDS.get(rid)
        seen = rec is not None and rec.scope is not None
        whole = rec is not None and any(
            e["type"] == "http.request" and not e["more_body"] for e in rec.events
        )
        out[rid] = {"seen": seen, "whole_body": whole}
    await respond_json(send, out)


async def soak_echo(receive: Receive, send: Send, q: dict[str, list[str]]) -> None:
    if qstr(q, "chunked") != "1":
        await respond(send, 200, await read_body(receive), b"application/octet-stream")
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        more = message.get("more_body", False)
        await send({"type": "http.response.body", "body": message.get("body", b""), "more_body": more})


async def soak_stream(send: Send, q: dict[str, list[str]]) -> None:
    count, size = qint(q, "n", 4), qint(q, "size", 1024)
    length = str(count * size).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", length)]})
    for index in range(count):
        body = bytes((index % 256,)) * size
        await send({"type": "http.response.body", "body": body, "more_body": index < count - 1})


async def websocket_echo(receive: Receive, send: Send) -> None:
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "bytes": message.get("bytes"), "text": message.get("text")})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The recorder with the additions above (ASGI 3.0)."""
    kind = scope["type"]
    if kind == "websocket":
        await websocket_echo(receive, send)
        return
    path = scope.get("path", "")
    if kind == "http" and (path.startswith("/robust/") or path.startswith("/soak/")):
        q = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        if path == "/robust/stats":
            await robust_stats(send, q)
        elif path == "/robust/pid":
            await respond(send, 200, str(os.getpid()).encode())
        elif path == "/robust/check":
            await robust_check(send, q)
        elif path == "/robust/block":
            time.sleep(float(qstr(q, "seconds", "1")))  # deliberately blocks the event loop
            await respond(send, 200, b"unblocked")
        elif path == "/soak/echo":
            await soak_echo(receive, send, q)
        elif path == "/soak/stream":
            await soak_stream(send, q)
        else:
            await respond(send, 404, b"no such endpoint")
        return
    await recorder.app(scope, receive, send)
