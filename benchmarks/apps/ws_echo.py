"""The app of the websocket scenario: raw ASGI, echoes every WebSocket message back.

Any HTTP request gets 404: the scenario only opens WebSockets.
"""

from __future__ import annotations

from typing import Any

from benchmarks.apps.hello import lifespan


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Accept the WebSocket, then send each message back as it came (text or bytes)."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
