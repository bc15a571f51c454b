"""An app that records the order in which requests get to go on, to check the server is fair.

- `/wait-body?name=N`: answers a first chunk at once, waits for the whole request body,
  notes N, ends the response;
- `/start?name=N`: notes N in its first step;
- `/hold?fifo=PATH`: answers a first chunk, then holds the whole event loop (a blocking
  read of the named pipe PATH) until the test writes a byte to it, so that input on
  several connections piles up and is read in one go;
- `/order`: the names noted so far, as JSON (and forgets them).
"""

from __future__ import annotations

import json
from typing import Any

order: list[str] = []
START = {"type": "http.response.start", "status": 200, "headers": []}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    arg = scope["query_string"].decode().partition("=")[2]
    if path == "/start":
        order.append(arg)
        body = arg.encode()
    elif path == "/order":
        body = json.dumps(order).encode()
        order.clear()
    else:
        await send(START)
        await send({"type": "http.response.body", "body": b"ready\n", "more_body": True})
        if path == "/hold":
            with open(arg, "rb") as fifo:  # blocking the loop is the point
                fifo.read(1)
        else:
            while (await receive()).get("more_body"):
                pass
            order.append(arg)
        await send({"type": "http.response.body", "body": b"done\n"})
        return
    await send(START)
    await send({"type": "http.response.body", "body": body})
