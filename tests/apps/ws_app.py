"""A recording WebSocket ASGI app for the server's WebSocket tests.

Plain ASGI (no dartle import), so the same app runs under dartle and under uvicorn. Each
socket is recorded under the ``rid`` query parameter: the events ``receive()`` returned,
how many ``send()`` calls returned, and what ``send()`` raised. The app checks every event
against the ASGI websocket spec and records violations. Tests read the records back over
plain HTTP (``/ctl/...``), so they wait for what the app saw instead of sleeping.

WebSocket paths:
  /echo           accept (``subprotocol``: pick it; ``header=name:value``: accept headers),
                  echo text and bytes; text ``close:CODE:REASON`` makes the app close
  /scope          accept, send the scope as JSON, then wait for the disconnect
  /refuse         websocket.close before accept (the server answers 403)
  /deny           the websocket.http.response denial: 401 with a JSON body (``chunks=2``: two parts)
  /raise-before   raise before accepting;  /return-before: return before accepting
  /raise-after    accept, then raise;      /return-after: accept, then return
  /hold           accept, wait for /ctl/release, read until the disconnect, then try to send
  /flood          accept, send ``count`` messages of ``size`` bytes, counting sends
  /close-send     accept, close with ``code``/``reason``, then try to send
  /slow-accept    wait for /ctl/release, then accept and wait for the disconnect
HTTP paths: /ctl/info /ctl/wait /ctl/release /ctl/pid /ctl/seen, and any other (plain HTTP).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

STALL_SECONDS = 0.5  # a send() pending this long counts as "stalled"
WAIT_TIMEOUT = 20.0


def encode(obj: Any) -> Any:
    """JSON-safe form of ASGI values; bytes become {"$bytes": latin-1 text}."""
    if isinstance(obj, bytes):
        return {"$bytes": obj.decode("latin-1")}
    if isinstance(obj, (list, tuple)):
        return [encode(item) for item in obj]
    if isinstance(obj, dict):
        return {str(key): encode(value) for key, value in obj.items()}
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return {"$repr": repr(obj)}


class Record:
    """Everything one socket did, as the app saw it."""

    def __init__(self, rid: str) -> None:
        self.rid = rid
        self.events: list[dict[str, Any]] = []
        self.received = 0
        self.sends = 0
        self.send_pending_since: float | None = None
        self.send_error: dict[str, Any] | None = None
        self.disconnect: dict[str, Any] | None = None
        self.finished = False
        self.released = asyncio.Event()

    def stalled(self) -> bool:
        since = self.send_pending_since
        return since is not None and time.monotonic() - since >= STALL_SECONDS

    def as_json(self) -> dict[str, Any]:
        return {
            "rid": self.rid,
            "events": self.events[-50:],
            "received": self.received,
            "sends": self.sends,
            "send_error": self.send_error,
            "disconnect": self.disconnect,
            "finished": self.finished,
        }


RECORDS: dict[str, Record] = {}
VIOLATIONS: list[str] = []
_changed: asyncio.Event | None = None


def changed() -> None:
    global _changed
    if _changed is not None:
        _changed.set()
        _changed = None


async def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    global _changed
    deadline = time.monotonic() + timeout
    while not predicate():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        if _changed is None:
            _changed = asyncio.Event()
        try:
            # short slices so that time-based predicates ("stalled") are re-evaluated too
            await asyncio.wait_for(_changed.wait(), min(remaining, 0.05))
        except asyncio.TimeoutError:
            pass
    return True


def record_for(rid: str) -> Record:
    if rid not in RECORDS:
        RECORDS[rid] = Record(rid)
    return RECORDS[rid]


def event_violations(message: Any, first: bool) -> list[str]:
    if type(message) is not dict:
        return [f"event is {type(message).__name__}, not dict"]
    kind = message.get("type")
    if first and kind != "websocket.connect":
        return [f"first event is {kind!r}, not websocket.connect"]
    if kind == "websocket.receive":
        text, data = message.get("text"), message.get("bytes")
        if (text is None) == (data is None):
            return ["websocket.receive needs exactly one of text/bytes"]
        if text is not None and type(text) is not str:
            return [f"text is {type(text).__name__}"]
        if data is not None and type(data) is not bytes:
            return [f"bytes is {type(data).__name__}"]
    elif kind == "websocket.disconnect":
        if not isinstance(message.get("code"), int) or isinstance(message.get("code"), bool):
            return [f"disconnect code is {message.get('code')!r}"]
        if type(message.get("reason", "")) is not str:
            return [f"disconnect reason is {message.get('reason')!r}"]
    elif kind != "websocket.connect":
        return [f"unknown event type {kind!r}"]
    return []


class Socket:
    """receive/send wrappers that record and check."""

    def __init__(self, rec: Record, receive: Receive, send: Send) -> None:
        self.rec = rec
        self._receive = receive
        self._send = send
        self.first = True

    async def receive(self) -> Message:
        message = await self._receive()
        for problem in event_violations(message, self.first):
            VIOLATIONS.append(f"{self.rec.rid}: {problem}")
        self.first = False
        kind = message.get("type")
        entry: dict[str, Any] = {"type": kind}
        if kind == "websocket.receive":
            self.rec.received += 1
            value = message.get("text")
            entry["kind"] = "text" if value is not None else "bytes"
            if value is None:
                value = message.get("bytes")
            entry["size"] = len(value)
            if len(value) <= 64:
                entry["value"] = encode(value)
        elif kind == "websocket.disconnect":
            entry["code"] = message.get("code")
            entry["reason"] = message.get("reason")
            self.rec.disconnect = entry
            # also in the server's log, for tests that outlive the server (shutdown)
            print(f"ws_app: {self.rec.rid} disconnect {entry['code']} {entry['reason']!r}", flush=True)
        self.rec.events.append(entry)
        changed()
        return message

    async def send(self, message: Message) -> None:
        self.rec.send_pending_since = time.monotonic()
        try:
            await self._send(message)
        except Exception as exc:
            self.rec.send_error = {
                "type": type(exc).__name__,
                "oserror": isinstance(exc, OSError),
                "message": str(exc),
                "sent": message.get("type"),
            }
            changed()
            raise
        finally:
            self.rec.send_pending_since = None
        self.rec.sends += 1
        changed()

    async def until_disconnect(self) -> Message:
        while True:
            message = await self.receive()
            if message["type"] == "websocket.disconnect":
                return message


def params(scope: Scope) -> dict[str, list[str]]:
    return parse_qs(scope.get("query_string", b"").decode("latin-1"))


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope.setdefault("state", {})["started"] = "yes"
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        await http_app(scope, receive, send)
        return
    query = params(scope)
    rid = query.get("rid", ["anon"])[0]
    rec = record_for(rid)
    ws = Socket(rec, receive, send)
    try:
        await ws_route(scope, ws, query)
    finally:
        rec.finished = True
        changed()


async def ws_route(scope: Scope, ws: Socket, query: dict[str, list[str]]) -> None:
    path = scope["path"][len(scope.get("root_path", "")) :]
    connect = await ws.receive()
    assert connect["type"] == "websocket.connect"
    if path == "/echo":
        subprotocol = query.get("subprotocol", [None])[0]
        headers = [tuple(h.encode().split(b":", 1)) for h in query.get("header", [])]
        await ws.send({"type": "websocket.accept", "subprotocol": subprotocol, "headers": headers})
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is not None and text.startswith("close:"):
                _, code, reason = text.split(":", 2)
                await ws.send({"type": "websocket.close", "code": int(code), "reason": reason})
                await ws.until_disconnect()
                return
            if text is not None:
                await ws.send({"type": "websocket.send", "text": text})
            else:
                await ws.send({"type": "websocket.send", "bytes": message["bytes"]})
    elif path == "/scope":
        await ws.send({"type": "websocket.accept"})
        await ws.send({"type": "websocket.send", "text": json.dumps(encode(scope))})
        await ws.until_disconnect()
    elif path == "/refuse":
        await ws.send({"type": "websocket.close", "code": 1008})
        await ws.until_disconnect()
    elif path == "/deny":
        headers = [(b"content-type", b"application/json"), (b"x-denied", b"yes")]
        await ws.send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
        if query.get("chunks", ["1"])[0] == "2":
            await ws.send({"type": "websocket.http.response.body", "body": b'{"detail":', "more_body": True})
            await ws.send({"type": "websocket.http.response.body", "body": b'"no entry"}'})
        else:
            await ws.send({"type": "websocket.http.response.body", "body": b'{"detail":"no entry"}'})
        await ws.until_disconnect()
    elif path == "/raise-before":
        raise RuntimeError("refusing by crashing")
    elif path == "/return-before":
        return
    elif path == "/raise-after":
        await ws.send({"type": "websocket.accept"})
        raise RuntimeError("crash after accept")
    elif path == "/return-after":
        await ws.send({"type": "websocket.accept"})
    elif path == "/hold":
        await ws.send({"type": "websocket.accept"})
        await ws.rec.released.wait()
        await ws.until_disconnect()
        await ws.send({"type": "websocket.send", "text": "after the disconnect"})
    elif path == "/flood":
        count = int(query.get("count", ["1000"])[0])
        size = int(query.get("size", ["65536"])[0])
        payload = b"x" * size
        await ws.send({"type": "websocket.accept"})
        for _ in range(count):
            await ws.send({"type": "websocket.send", "bytes": payload})
        await ws.until_disconnect()
    elif path == "/close-send":
        code = int(query.get("code", ["1000"])[0])
        reason = query.get("reason", [""])[0]
        await ws.send({"type": "websocket.accept"})
        await ws.send({"type": "websocket.close", "code": code, "reason": reason})
        try:
            await ws.send({"type": "websocket.send", "text": "after close"})
        except OSError:
            pass
        await ws.until_disconnect()
    elif path == "/slow-accept":
        await ws.rec.released.wait()
        await ws.send({"type": "websocket.accept"})
        await ws.until_disconnect()
    else:
        await ws.send({"type": "websocket.close", "code": 1008})


async def http_app(scope: Scope, receive: Receive, send: Send) -> None:
    query = params(scope)
    path = scope["path"]
    status, body = 200, b""
    if path == "/ctl/info":
        body = json.dumps(record_for(query["rid"][0]).as_json()).encode()
    elif path == "/ctl/wait":
        rec = record_for(query["rid"][0])
        until = query["until"][0]
        predicates: dict[str, Callable[[], bool]] = {
            "connect": lambda: any(e["type"] == "websocket.connect" for e in rec.events),
            "disconnect": lambda: rec.disconnect is not None,
            "finished": lambda: rec.finished,
            "stalled": rec.stalled,
            "send_error": lambda: rec.send_error is not None,
            "received": lambda: rec.received >= int(query.get("n", ["1"])[0]),
        }
        ok = await wait_for(predicates[until], float(query.get("timeout", [str(WAIT_TIMEOUT)])[0]))
        status = 200 if ok else 408
        body = json.dumps(rec.as_json()).encode()
    elif path == "/ctl/release":
        record_for(query["rid"][0]).released.set()
        changed()
    elif path == "/ctl/pid":
        body = json.dumps({"pid": os.getpid()}).encode()
    elif path == "/ctl/seen":
        body = json.dumps({"seen": sorted(RECORDS), "violations": VIOLATIONS}).encode()
    else:
        body = b"plain http"
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
