"""SessionMiddleware around a plain ASGI app that reads and edits scope["session"].

GET /get              the session as JSON
GET /set?key=value    sets keys, then answers like /get
GET /clear            empties the session
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from dartle.web.middleware import SessionMiddleware

SECRET = "test-secret-key"


async def session_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    session = scope["session"]
    if scope["path"] == "/set":
        session.update(parse_qsl(scope["query_string"].decode()))
    elif scope["path"] == "/clear":
        session.clear()
    body = json.dumps(session).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


app = SessionMiddleware(session_app, secret_key=SECRET, max_age=3600)
strict = SessionMiddleware(
    session_app,
    secret_key=SECRET,
    session_cookie="sid",
    max_age=None,
    path="/",
    same_site="strict",
    https_only=True,
    domain="example.com",
)
