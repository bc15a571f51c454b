"""Lifespan apps that fail in the ways tests/robustness/test_lifespan_faults.py checks.

Plain ASGI. HTTP requests are answered by the recorder (tests/apps/recorder.py), so the
tests can hold a request in flight (/hold, /slow-echo) across the lifespan failure.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.apps import recorder
from tests.apps.recorder import Receive, Scope, Send

SHUTDOWN_MARKER = "shutdown exploded (marker-6402)"
RUNNING_MARKER = "lifespan died while serving (marker-3318)"


async def _serve_http(scope: Scope, receive: Receive, send: Send) -> None:
    await recorder.app(scope, receive, send)


async def raising_shutdown(scope: Scope, receive: Receive, send: Send) -> None:
    """Starts fine, raises on lifespan.shutdown instead of answering it."""
    if scope["type"] != "lifespan":
        await _serve_http(scope, receive, send)
        return
    await receive()
    await send({"type": "lifespan.startup.complete"})
    await receive()
    print("raising_shutdown: got lifespan.shutdown", flush=True)
    raise RuntimeError(SHUTDOWN_MARKER)


async def dies_while_serving(scope: Scope, receive: Receive, send: Send) -> None:
    """Completes startup, then its lifespan task raises while the server serves."""
    if scope["type"] != "lifespan":
        await _serve_http(scope, receive, send)
        return
    await receive()
    await send({"type": "lifespan.startup.complete"})
    await asyncio.sleep(0)
    raise RuntimeError(RUNNING_MARKER)


async def returns_after_startup(scope: Scope, receive: Receive, send: Send) -> None:
    """Completes startup and returns: it never waits for lifespan.shutdown."""
    if scope["type"] != "lifespan":
        await _serve_http(scope, receive, send)
        return
    await receive()
    await send({"type": "lifespan.startup.complete"})


async def startup_exit(scope: Scope, receive: Receive, send: Send) -> None:
    """Raises SystemExit during startup (a BaseException, as sys.exit() in setup code does)."""
    if scope["type"] != "lifespan":
        await _serve_http(scope, receive, send)
        return
    await receive()
    raise SystemExit(7)


async def startup_wrong_message(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers lifespan.startup with an event that is no lifespan event."""
    if scope["type"] != "lifespan":
        await _serve_http(scope, receive, send)
        return
    await receive()
    message: dict[str, Any] = {"type": "http.response.start", "status": 200}
    await send(message)
