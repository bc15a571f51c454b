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
