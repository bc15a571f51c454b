"""App targets for the CLI tests: a factory, and things that are not ASGI apps."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

not_callable = 42

Message = dict[str, Any]


def make_app() -> Callable[..., Awaitable[None]]:
    """An app factory, for ``--factory``."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"made by factory"})

    return app
