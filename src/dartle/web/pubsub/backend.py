"""The seam between a `Broadcast` and the bus that carries its messages.

A `Broadcast` fans messages out to the subscribers of its own process; a backend only
moves messages between processes. It subscribes to a channel once per process (when
the first local subscriber arrives), and hands every message it receives to the
broadcast's `Hub`. The in-memory backend has no other process to reach, so publishing
is delivering.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

__all__ = ["Backend", "Hub", "MemoryBackend"]


class Hub(Protocol):
    """What a backend may call on the broadcast that owns it."""

    def deliver(self, channel: str, message: str) -> None:
        """Hand a received message to the local subscribers of `channel`."""

    def set_connected(self, connected: bool) -> None:
        """Report whether messages can currently flow through the bus."""

    def channels(self) -> list[str]:
        """The channels with local subscribers (to subscribe again after a reconnect)."""


class Backend(Protocol):
    """A message bus between processes (or none, for `memory://`)."""

    description: str
    """The bus for messages and logs, without credentials (e.g. `redis://host:6379/0`)."""

    async def start(self, hub: Hub, wait: bool) -> None:
        """Connect; with `wait`, raise `BroadcastUnavailable` if the bus cannot be reached."""

    async def stop(self) -> None:
        """Disconnect and release everything `start` acquired."""

    async def subscribe(self, channel: str) -> None:
        """Subscribe this process to `channel`; returns once the bus confirmed it.

        Returns at once while the bus is down: the channel is subscribed again, with
        all the others, when the connection comes back.
        """

    async def unsubscribe(self, channel: str) -> None:
        """Stop receiving `channel` in this process; returns once the bus confirmed it.

        Best effort: while the bus is down there is nothing to do (the next connection
        subscribes only to the channels still wanted).
        """

    async def publish(self, channel: str, message: str) -> None:
        """Send `message` to every subscriber of `channel`, or raise `PublishError`."""


class MemoryBackend:
    """`memory://`: one process, no bus. Publishing delivers at once, in order."""

    description = "memory://"

    def __init__(self) -> None:
        self._hub: Hub | None = None

    async def start(self, hub: Hub, wait: bool) -> None:
        self._hub = hub
        hub.set_connected(True)

    async def stop(self) -> None:
        if self._hub is not None:
            self._hub.set_connected(False)
        self._hub = None

    async def subscribe(self, channel: str) -> None:
        return None

    async def unsubscribe(self, channel: str) -> None:
        return None

    async def publish(self, channel: str, message: str) -> None:
        assert self._hub is not None, "Broadcast checks that it is connected"
        self._hub.deliver(channel, message)
        # Let the subscribers read before the next message: a publisher looping faster
        # than max_queue messages must not make every subscriber look slow.
        await asyncio.sleep(0)
