"""Reports what a TLS test needs to see: the scheme, http_version and the `tls` extension.

GET /scope -> the scope's facts as JSON; GET /file?path=... -> that file by pathsend;
a WebSocket on any path -> accepted, then the scope's facts as one JSON text message,
then an echo of every text message.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs


def facts(scope: dict[str, Any]) -> bytes:
    extensions = scope.get("extensions") or {}
    return json.dumps({
        "type": scope["type"],
        "scheme": scope["scheme"],
        "http_version": scope["http_version"],
        "has_tls": "tls" in extensions,
        "tls": extensions.get("tls"),
        "pathsend": "http.response.pathsend" in extensions,
    }).encode()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": facts(scope).decode()})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": message.get("text") or ""})
    if scope["path"] == "/file":
        path = parse_qs(scope["query_string"].decode())["path"][0]
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        await send({"type": "http.response.pathsend", "path": path})
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": facts(scope)})
