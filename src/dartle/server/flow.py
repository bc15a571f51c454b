"""Write-side flow control shared by the protocols that own a transport (HTTP/1, WebSocket)."""

from __future__ import annotations

import asyncio


class WriteFlow:
    """pause_writing/resume_writing from asyncio, and `drain()` for senders to await.

    The class using it provides the slots `loop`, `closing`, `write_paused` and
    `drain_waiter` (mypy cannot see them from here, hence the ignores).
    """

    __slots__ = ()

    loop: asyncio.AbstractEventLoop
    closing: bool
    write_paused: bool
    drain_waiter: asyncio.Future[None] | None

    def pause_writing(self) -> None:
        self.write_paused = True  # type: ignore[misc]

    def resume_writing(self) -> None:
        self.write_paused = False  # type: ignore[misc]
        waiter = self.drain_waiter
        if waiter is not None:
            self.drain_waiter = None  # type: ignore[misc]
            if not waiter.done():
                waiter.set_result(None)

    async def drain(self) -> None:
        """Wait while the transport's write buffer is above its high-water mark."""
        if self.write_paused and not self.closing:
            waiter = self.drain_waiter
            if waiter is None:
                waiter = self.drain_waiter = self.loop.create_future()  # type: ignore[misc]
            # Several tasks may wait on one connection: shielded, a cancelled waiter
            # does not cancel the shared future under the others.
            await asyncio.shield(waiter)
