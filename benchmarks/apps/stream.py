"""The app of the streaming scenario: raw ASGI, 1 MiB sent as 16 chunks of 64 KiB.

No Content-Length: the server frames the body as it comes (chunked over HTTP/1.1),
and each chunk waits for the server's `send` to return, as a generator-fed response
does. The chunks are prepared once: the app costs the same on every server.
"""

from __future__ import annotations

from typing import Any

from benchmarks.apps.hello import lifespan

CHUNK = bytes(range(256)) * 256  # 64 KiB
CHUNKS = 16
BODY = CHUNK * CHUNKS  # what a client reads: 1 MiB
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/octet-stream")],
}
MORE = {"type": "http.response.body", "body": CHUNK, "more_body": True}
LAST = {"type": "http.response.body", "body": CHUNK, "more_body": False}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """GET: 200 with 1 MiB of application/octet-stream, streamed."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    await send(START)
    for _ in range(CHUNKS - 1):
        await send(MORE)
    await send(LAST)
