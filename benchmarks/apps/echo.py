"""The app of the post-echo scenario: raw ASGI, answers a POST with its own body.

The whole body is read before answering (as an app that parses it must), and the
answer carries a Content-Length, so the server frames both directions the usual way.
"""

from __future__ import annotations

from typing import Any

from benchmarks.apps.hello import lifespan


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """POST: 200 with the request body (application/octet-stream). GET: 200, empty."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-type", b"application/octet-stream"),
            (b"content-length", str(len(body)).encode()),
        ],
    })
    await send({"type": "http.response.body", "body": body})
