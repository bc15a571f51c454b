"""A plain ASGI app behind the middleware tests: each path answers one kind of response.

GET /text?size=N        text/plain, N bytes (default 1000), compressible
GET /json               a small JSON body echoing the request headers it cares about
GET /sse                text/event-stream, 2000 bytes
GET /png                image/png, 2000 bytes
GET /encoded            already gzip-encoded body (Content-Encoding: gzip)
GET /etag               2000 bytes of text with a strong ETag
GET /notransform        2000 bytes with Cache-Control: no-transform
GET /vary               2000 bytes with the app's own Vary: Accept-Language
GET /stream?id=X        a streamed body: chunk "first...", then waits until
                        /release?id=X is requested, then chunk "second..." and the end
GET /release?id=X       releases stream X
GET /small-stream       a streamed body of two 10-byte chunks
GET /file               this source file, sent by FileResponse (ranges, pathsend...)
WebSocket /ws           accepts, sends "hello", closes
"""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any
from urllib.parse import parse_qs

from dartle.web.fileresponse import FileResponse

_releases: dict[str, asyncio.Event] = {}

TEXT_UNIT = b"dartle middleware test line, compressible and repetitive.\n"


def text_of(size: int) -> bytes:
    return (TEXT_UNIT * (size // len(TEXT_UNIT) + 1))[:size]


def _event(key: str) -> asyncio.Event:
    return _releases.setdefault(key, asyncio.Event())


async def _respond(
    send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]], head: bool
) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "hello"})
        await send({"type": "websocket.close", "code": 1000})
        return
    path = scope["path"]
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    head = scope["method"] == "HEAD"
    text = [(b"content-type", b"text/plain; charset=utf-8")]
    if path == "/text":
        await _respond(send, 200, text_of(int(query.get("size", "1000"))), text, head)
    elif path == "/json":
        wanted = ("host", "origin", "cookie", "x-forwarded-proto")
        seen = {k.decode(): v.decode() for k, v in scope["headers"] if k.decode() in wanted}
        body = json.dumps(
            {
                "method": scope["method"],
                "path": path,
                "scheme": scope.get("scheme"),
                "headers": seen,
                "query": scope["query_string"].decode(),
            }
        ).encode()
        await _respond(
            send, 200, body, [(b"content-type", b"application/json"), (b"x-request-id", b"r-1")], head
        )
    elif path == "/sse":
        await _respond(send, 200, text_of(2000), [(b"content-type", b"text/event-stream")], head)
    elif path == "/png":
        await _respond(send, 200, text_of(2000), [(b"content-type", b"image/png")], head)
    elif path == "/encoded":
        body = gzip.compress(text_of(2000))
        await _respond(send, 200, body, [*text, (b"content-encoding", b"gzip")], head)
    elif path == "/etag":
        await _respond(send, 200, text_of(2000), [*text, (b"etag", b'"v1"')], head)
    elif path == "/notransform":
        await _respond(send, 200, text_of(2000), [*text, (b"cache-control", b"no-transform")], head)
    elif path == "/vary":
        await _respond(send, 200, text_of(2000), [*text, (b"vary", b"Accept-Language")], head)
    elif path == "/stream":
        key = query["id"]
        await send({"type": "http.response.start", "status": 200, "headers": text})
        await send({"type": "http.response.body", "body": b"first:" + text_of(200), "more_body": True})
        await _event(key).wait()
        _releases.pop(key, None)
        await send({"type": "http.response.body", "body": b"second:" + text_of(200), "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/release":
        _event(query["id"]).set()
        await _respond(send, 200, b"released", text, head)
    elif path == "/file":
        await FileResponse(__file__, media_type="text/plain")(scope, receive, send)
    elif path == "/small-stream":
        await send({"type": "http.response.start", "status": 200, "headers": text})
        await send({"type": "http.response.body", "body": b"0123456789", "more_body": True})
        await send({"type": "http.response.body", "body": b"abcdefghij"})
    else:
        await _respond(send, 404, b"not found", text, head)
