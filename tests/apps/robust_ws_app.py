"""The WebSocket fault app of tests/robustness: robust_app.py plus recorded WebSocket routes.

Plain ASGI (no dartle import). HTTP goes to robust_app.py unchanged (the recorder, its
/ctl endpoints, /fault, /robust/stats...), and so does any WebSocket path not listed
here (the echo). Each socket below is recorded in the recorder's table under the ``rid``
query parameter, so a test waits on it through the usual ``/ctl/wait`` predicates:
``events:N`` (what ``receive()`` returned), ``note:NAME``, ``send-error`` and
``finished``; ``disconnect`` holds once ``websocket.disconnect`` was received.

WebSocket paths:
  /ws-fault    fail at one step: ``step`` = connect (before accepting) | accept (right
               after) | receive (after the first message) | send (after echoing it) |
               close (after closing with 4000); ``exc`` = error | cancel | exit;
               ``sync=1`` fails before the app's first await instead of after one
  /ws-hold     accept, note "accepted", record every message until the disconnect, then
               try one more send (it must raise the server's OSError); ``wait=after``:
               wait for /ctl/release before reading, ``wait=before``: before accepting
  /ws-flood    accept, note "accepted", send ``count`` binary messages of ``size`` bytes
               without reading, until a send raises
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs

from tests.apps import robust_app
from tests.apps.recorder import BOARD, Message, Receive, Record, Scope, Send, qint, qstr, record_for


class Recorded:
    """receive/send of one socket, every event and send error written to its Record."""

    def __init__(self, rec: Record, receive: Receive, send: Send) -> None:
        self.rec = rec
        self._receive = receive
        self._send = send

    async def receive(self) -> Message:
        message = await self._receive()
        kind = message.get("type")
        entry: dict[str, Any] = {"type": kind}
        if kind == "websocket.receive":
            value = message.get("text")
            entry["kind"] = "text" if value is not None else "bytes"
            if value is None:
                value = message.get("bytes") or b""
            entry["size"] = len(value)
            if len(value) <= 64:
                entry["value"] = value if isinstance(value, str) else value.decode("latin-1")
        elif kind == "websocket.disconnect":
            entry["code"] = message.get("code")
            entry["reason"] = message.get("reason")
            self.rec.disconnected = True
        self.rec.events.append(entry)
        BOARD.changed()
        return message

    async def send(self, message: Message) -> None:
        try:
            await self._send(message)
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                self.rec.send_error = {
                    "type": type(exc).__name__,
                    "oserror": isinstance(exc, OSError),
                    "message": str(exc),
                    "sent": message.get("type"),
                }
                BOARD.changed()
            raise
        self.rec.sends += 1
        BOARD.changed()

    def note(self, name: str, value: Any = True) -> None:
        self.rec.notes[name] = value
        BOARD.changed()

    async def until_disconnect(self) -> Message:
        while True:
            message = await self.receive()
            if message["type"] == "websocket.disconnect":
                return message


async def ws_fault(ws: Recorded, q: dict[str, list[str]]) -> None:
    step = qstr(q, "step")
    error = robust_app.fault_exception(qstr(q, "exc", "error"), ws.rec.rid)
    if qstr(q, "sync") != "1":
        await asyncio.sleep(0)  # fail after an await, not in the task's first step
    await ws.receive()  # websocket.connect
    if step == "connect":
        raise error
    await ws.send({"type": "websocket.accept"})
    if step == "accept":
        raise error
    message = await ws.receive()
    if step == "receive":
        raise error
    await ws.send({"type": "websocket.send", "text": f"echo:{message.get('text')}"})
    if step == "send":
        raise error
    await ws.send({"type": "websocket.close", "code": 4000, "reason": "the app closes"})
    if step == "close":
        raise error
    await ws.until_disconnect()


async def ws_hold(ws: Recorded, q: dict[str, list[str]]) -> None:
    await ws.receive()
    if qstr(q, "wait") == "before":
        await asyncio.wait_for(ws.rec.released.wait(), 60)
    await ws.send({"type": "websocket.accept"})
    ws.note("accepted")
    if qstr(q, "wait") == "after":
        await asyncio.wait_for(ws.rec.released.wait(), 60)
    await ws.until_disconnect()
    await ws.send({"type": "websocket.send", "text": "after the disconnect"})


async def ws_flood(ws: Recorded, q: dict[str, list[str]]) -> None:
    count, size = qint(q, "count", 5000), qint(q, "size", 65536)
    await ws.receive()
    await ws.send({"type": "websocket.accept"})
    ws.note("accepted")
    payload = b"f" * size
    for _ in range(count):
        await ws.send({"type": "websocket.send", "bytes": payload})


ROUTES = {"/ws-fault": ws_fault, "/ws-hold": ws_hold, "/ws-flood": ws_flood}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """robust_app with the recorded WebSocket routes above (ASGI 3.0)."""
    route = ROUTES.get(scope.get("path", "")) if scope["type"] == "websocket" else None
    if route is None:
        await robust_app.app(scope, receive, send)
        return
    q = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    rec = record_for(qstr(q, "rid") or "anon-ws")
    rec.scope = {"type": "websocket", "path": scope["path"], "http_version": scope.get("http_version")}
    BOARD.changed()
    try:
        await route(Recorded(rec, receive, send), q)
        rec.outcome = "returned"
    except BaseException as exc:
        rec.outcome = f"raised {type(exc).__name__}: {exc}"
        raise
    finally:
        rec.finished = True
        BOARD.changed()
