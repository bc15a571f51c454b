"""The hello-world app of the plaintext scenarios: raw ASGI, no framework.

It is as small as an ASGI app can be, so that what a benchmark measures is the
server's own cost per request.
"""

from __future__ import annotations

from typing import Any

BODY = b"Hello, world!"
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"text/plain"),
        (b"content-length", str(len(BODY)).encode()),
    ],
}
RESPONSE_BODY = {"type": "http.response.body", "body": BODY}


async def lifespan(receive: Any, send: Any) -> None:
    """Accept startup and shutdown: the raw apps have nothing to set up."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer every HTTP request with 200 "Hello, world!"; accept lifespan events."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    await send(START)
    await send(RESPONSE_BODY)
