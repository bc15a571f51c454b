"""The ASGI lifespan protocol (spec 2.0): startup and shutdown events with state."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from dartle.asgi.types import ASGIApp, Message

logger = logging.getLogger("dartle.error")


class Lifespan:
    """Runs the app's lifespan scope in one task for the server's lifetime.

    mode "auto": an app that raises before answering startup does not support lifespan;
    we go on without it. mode "on": that is a fatal error. mode "off": never called.
    """

    def __init__(self, app: ASGIApp, mode: str) -> None:
        self.app = app
        self.mode = mode
        self.state: dict[str, Any] = {}
        self.supported = mode != "off"
        self.failed_message: str | None = None
        self.error = False
        self._events: asyncio.Queue[Message] = asyncio.Queue()
        self._startup_done = asyncio.Event()
        self._shutdown_done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._started = False

    async def startup(self) -> bool:
        """Send lifespan.startup; True if the server may go on serving."""
        if not self.supported:
            return True
        logger.info("Waiting for application startup.")
        self._task = asyncio.get_running_loop().create_task(self._main())
        await self._events.put({"type": "lifespan.startup"})
        await self._startup_done.wait()
        if self.failed_message is not None or (self.error and self.mode == "on"):
            if self.failed_message:
                logger.error("Application startup failed: %s", self.failed_message)
            else:
                logger.error("Application startup failed. Exiting.")
            return False
        if self.supported:
            logger.info("Application startup complete.")
        return True

    async def shutdown(self) -> None:
        """Send lifespan.shutdown and wait for the app's answer."""
        if not self.supported or self.error or self._task is None:
            return
        logger.info("Waiting for application shutdown.")
        await self._events.put({"type": "lifespan.shutdown"})
        await self._shutdown_done.wait()
        if self.failed_message is not None:
            logger.error("Application shutdown failed: %s", self.failed_message)
        elif self.error:
            logger.error("Application shutdown failed: the app raised (traceback above)")
        else:
            logger.info("Application shutdown complete.")

    async def _main(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self._receive, self._send)
        except BaseException as exc:
            self.error = True
            if self._started or self.mode == "on" or isinstance(exc, SystemExit):
                logger.error("Exception in 'lifespan' protocol", exc_info=exc)
                if not self._started:
                    # an app that exits during startup failed it; it is not "unsupported"
                    self.failed_message = f"{type(exc).__name__}: {exc}"
            else:
                self.supported = False
                logger.info("ASGI 'lifespan' protocol appears unsupported.")
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._startup_done.set()
            self._shutdown_done.set()

    async def _receive(self) -> Message:
        return await self._events.get()

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            self._started = True
            self._startup_done.set()
        elif kind == "lifespan.startup.failed":
            self._started = True
            self.failed_message = str(message.get("message", "")) or "(no message)"
            self._startup_done.set()
        elif kind == "lifespan.shutdown.complete":
            self._shutdown_done.set()
        elif kind == "lifespan.shutdown.failed":
            self.failed_message = str(message.get("message", "")) or "(no message)"
            self._shutdown_done.set()
        else:
            raise RuntimeError(f"unexpected lifespan message {kind!r}")
