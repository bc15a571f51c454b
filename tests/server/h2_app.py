"""The HTTP/2 tests' app: the recorder (tests/apps/recorder.py) plus HTTP/2-only features.

Plain ASGI, like the recorder, which answers every path not listed here (its /ctl
endpoints included):

  /early-hint       103 Early Hints (Link fields from ``link`` query values), then 200
  /push             pushes each ``path`` query value (if the extension is advertised)
  /pushed/...       what pushed requests fetch: their own scope as JSON
  /big              one response of ``size`` bytes in ``chunks`` sends
  /big-header       a response with an ``x-big`` field of ``size`` bytes
  /sleep            answers after ``ms`` milliseconds (apps that suspend, concurrently)
  /ws/echo          WebSocket echo; the text "scope" returns the scope as JSON, "close"
                    closes with 4001; accepts the first offered subprotocol
  /ws/refuse        websocket.close before accepting (403)
  /ws/deny          a websocket.http.response (418 with a body) instead of accepting
  /page             an HTML page for browsers: it reports the protocol it came over, the
                    scope of a fetch(), and a WebSocket echo with that socket's scope
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs

from tests.apps import recorder
from tests.apps.recorder import Receive, Scope, Send, encode


async def early_hint(scope: Scope, receive: Receive, send: Send, query: dict[str, list[str]]) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    if "http.response.early_hint" in scope.get("extensions", {}):
        links = [link.encode() for link in query.get("link", [])]
        await send({"type": "http.response.early_hint", "links": links})
    await send({"type": "http.response.body", "body": b"after hints"})


async def push(scope: Scope, receive: Receive, send: Send, query: dict[str, list[str]]) -> None:
    advertised = "http.response.push" in scope.get("extensions", {})
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if advertised:
        for path in query.get("path", []):
            await send({"type": "http.response.push", "path": path,
                        "headers": [(b"accept", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps({"advertised": advertised}).encode()})


async def pushed(scope: Scope, receive: Receive, send: Send, query: dict[str, list[str]]) -> None:
    await recorder.respond_json(send, encode(dict(scope)))


async def big(scope: Scope, receive: Receive, send: Send, query: dict[str, list[str]]) -> None:
    size = int(query.get("size", ["1000000"])[0])
    chunks = int(query.get("chunks", ["1"])[0])
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(size * chunks).encode())]})
    piece = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    for index in range(chunks):
        await send({"type": "http.response.body", "body": piece, "more_body": index < chunks - 1})


async def big_header(scope: Scope, receive: Receive, send: Send, query: dict[str, list[str]]) -> None:
    size = int(query.get("size", ["30000"])[0])
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-big", b"h" * size)]})
    await send({"type": "http.response.body", "body": b"small body"})


async def sleep(scope: Scope, receive: Receive, send: Send, query: dict[str, list[str]]) -> None:
    await asyncio.sleep(int(query.get("ms", ["1"])[0]) / 1000)
    await recorder.respond(send, 200, b"slept")


async def websocket(scope: Scope, receive: Receive, send: Send) -> None:
    path = scope["path"]
    message = await receive()
    assert message["type"] == "websocket.connect"
    if path == "/ws/refuse":
        await send({"type": "websocket.close"})
        return
    if path == "/ws/deny":
        await send({"type": "websocket.http.response.start", "status": 418,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "websocket.http.response.body", "body": b"I'm a teapot"})
        return
    subprotocols = scope.get("subprotocols") or []
    await send({"type": "websocket.accept", "subprotocol": subprotocols[0] if subprotocols else None,
                "headers": [(b"x-ws", b"yes")]})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text == "scope":
            await send({"type": "websocket.send", "text": json.dumps(encode(dict(scope)))})
        elif text == "close":
            await send({"type": "websocket.close", "code": 4001, "reason": "asked to"})
            return
        elif text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>h2 page</title></head>
<body data-done="0"><pre id="out"></pre>
<script>
(async () => {
  const result = {};
  try {
    result.nextHopProtocol = performance.getEntriesByType("navigation")[0].nextHopProtocol;
    const fetched = await (await fetch("/scope/from-page")).json();
    result.fetchHttpVersion = fetched.http_version;
    result.fetchScheme = fetched.scheme;
    const ws = new WebSocket(`wss://${location.host}/ws/echo`);
    const messages = [];
    await new Promise((resolve, reject) => {
      ws.onopen = () => { ws.send("hello from the page"); ws.send("scope"); };
      ws.onmessage = (event) => { messages.push(event.data); if (messages.length === 2) resolve(); };
      ws.onerror = () => reject(new Error("websocket error"));
    });
    result.echo = messages[0];
    const wsScope = JSON.parse(messages[1]);
    result.wsHttpVersion = wsScope.http_version;
    result.wsScheme = wsScope.scheme;
    ws.close();
  } catch (error) {
    result.error = String(error);
  }
  document.getElementById("out").textContent = JSON.stringify(result);
  document.body.dataset.done = "1";
})();
</script></body></html>
"""


async def page(scope: Scope, receive: Receive, send: Send, query: dict[str, list[str]]) -> None:
    await recorder.respond(send, 200, PAGE, b"text/html; charset=utf-8")


ROUTES = {"/early-hint": early_hint, "/push": push, "/big": big, "/big-header": big_header, "/page": page,
          "/sleep": sleep}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await websocket(scope, receive, send)
        return
    if scope["type"] == "http":
        query: Any = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        route = ROUTES.get(scope["path"])
        if route is None and scope["path"].startswith("/pushed/"):
            route = pushed
        if route is not None:
            await route(scope, receive, send, query)
            return
    await recorder.app(scope, receive, send)
