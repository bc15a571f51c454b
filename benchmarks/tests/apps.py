"""Misbehaving apps, to check that the harness reports a broken server as FAILED."""

from __future__ import annotations

from typing import Any


async def error(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers every request with 500."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 500, "headers": []})
    await send({"type": "http.response.body", "body": b"boom"})


async def silent(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Never answers; returns when the client goes away (so the server can stop)."""
    if scope["type"] != "http":
        return
    while (await receive())["type"] != "http.disconnect":
        pass


async def closing(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers "Hello, world!" but closes every connection after it (no keep-alive)."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"13"), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": b"Hello, world!"})


async def wrong_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A WebSocket "echo" that answers every message in upper case."""
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    while (message := await receive())["type"] != "websocket.disconnect":
        await send({"type": "websocket.send", "text": message["text"].upper()})


async def strict_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The post-echo app, but 400 unless the body is exactly the scenario's 10 KiB."""
    from benchmarks.scenarios import ECHO_BODY

    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    status = 200 if body == ECHO_BODY else 400
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
