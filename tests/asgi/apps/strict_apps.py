"""ASGI apps that break one rule each (by path), for --strict-asgi, and legacy ASGI 2 apps.

Served without --strict-asgi most of them "work" (a server is lenient); under it each one
fails with a message naming the rule it broke.
"""

from __future__ import annotations

from typing import Any

from dartle.asgi.types import Receive, Scope, Send
from dartle.asgi.validate import StrictASGIMiddleware

START = "http.response.start"
BODY = "http.response.body"


async def _read_body(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """One misbehaviour per path; /ok behaves."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] == "websocket":
        await ws_app(scope, receive, send)
        return
    await _read_body(receive)
    path = scope["path"]
    if path == "/ok":
        await send({"type": START, "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": BODY, "body": b"fine"})
    elif path == "/uppercase":
        await send({"type": START, "status": 200, "headers": [(b"Content-Type", b"text/plain")]})
        await send({"type": BODY, "body": b"mixed-case header name"})
    elif path == "/str-headers":
        await send({"type": START, "status": 200, "headers": [("content-type", "text/plain")]})
        await send({"type": BODY, "body": b"str headers"})
    elif path == "/double-start":
        await send({"type": START, "status": 200})
        await send({"type": START, "status": 200})
        await send({"type": BODY, "body": b"twice"})
    elif path == "/body-first":
        await send({"type": BODY, "body": b"no start"})
    elif path == "/returns-early":
        await send({"type": START, "status": 200})
        await send({"type": BODY, "body": b"part", "more_body": True})
    elif path == "/status-str":
        await send({"type": START, "status": "200"})
        await send({"type": BODY, "body": b"str status"})
    elif path == "/body-str":
        await send({"type": START, "status": 200})
        await send({"type": BODY, "body": "text"})
    elif path == "/unknown-event":
        await send({"type": "http.response.bogus"})
    elif path == "/pathsend-relative":
        await send({"type": START, "status": 200})
        await send({"type": "http.response.pathsend", "path": "relative/file.txt"})
    elif path == "/trailers-unasked":
        await send({"type": START, "status": 200})
        await send({"type": BODY, "body": b"x"})
        await send({"type": "http.response.trailers", "headers": []})
    elif path == "/nan":
        await send({"type": START, "status": 200, "extra": float("nan")})
        await send({"type": BODY, "body": b"nan"})
    elif path == "/header-crlf":
        await send({"type": START, "status": 200, "headers": [(b"x-split", b"a\r\ninjected: yes")]})
        await send({"type": BODY, "body": b"split"})
    else:
        await send({"type": START, "status": 404})
        await send({"type": BODY, "body": b"no such case"})


async def ws_app(scope: Scope, receive: Receive, send: Send) -> None:
    """WebSocket misbehaviours by path; /ws/echo behaves."""
    message = await receive()
    assert message["type"] == "websocket.connect"
    path = scope["path"]
    if path == "/ws/echo":
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")})
    elif path == "/ws/bad-subprotocol":
        await send({"type": "websocket.accept", "subprotocol": "never-offered"})
    elif path == "/ws/send-before-accept":
        await send({"type": "websocket.send", "text": "too early"})
    elif path == "/ws/both":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "a", "bytes": b"b"})
    elif path == "/ws/bad-close-code":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1006})


strict_app = StrictASGIMiddleware(app)


class LegacyApp:
    """An ASGI 2 double callable: the class is called with the scope."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    async def __call__(self, receive: Receive, send: Send) -> None:
        if self.scope["type"] != "http":
            return
        await send({"type": START, "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": BODY, "body": b"asgi2 class"})


def legacy_function(scope: Scope) -> Any:
    """An ASGI 2 app written as a function returning the instance."""

    async def instance(receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": START, "status": 200})
        await send({"type": BODY, "body": b"asgi2 function"})

    return instance
