"""WebSocket groups over a `Broadcast`, in the spirit of Django Channels' groups.

    groups = Groups(broadcast)

    @app.websocket("/rooms/{room}")
    async def room(websocket: WebSocket, room: str) -> None:
        await websocket.accept()
        async with groups.member(websocket, room) as member:   # joined until the block ends
            async for text in websocket.iter_text():
                await member.send(room, text)                   # every member, every process

A member is a WebSocket plus one subscription and one task that forwards what its
groups receive to the socket as text messages. Leaving the block leaves every group
and stops the task, whatever way the handler ends, so nothing outlives the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType
from typing import Any, Protocol

from pydantic_core import to_json

from dartle.web.exceptions import WebSocketDisconnect
from dartle.web.pubsub.broadcast import Broadcast, Subscription
from dartle.web.pubsub.errors import SubscriberOverflow

__all__ = ["GroupMember", "Groups", "TextSocket"]

logger = logging.getLogger("dartle.web.pubsub")

# RFC 6455 7.4.1: 1008, the endpoint received something against its policy: here, a
# client that reads so slowly that its messages piled up.
TOO_SLOW = 1008
INTERNAL_ERROR = 1011


class TextSocket(Protocol):
    """What a member needs from a WebSocket (dartle's and Starlette's both qualify)."""

    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


def dumps(data: Any) -> str:
    """JSON text of `data` (pydantic models, dataclasses, dates and UUIDs included)."""
    return to_json(data).decode()


class Groups:
    """Named groups of WebSockets; a group is the broadcast channel `prefix + name`.

    The prefix keeps group channels apart from other channels on the same bus (Redis
    pub/sub channels are shared by every database number of a server).
    """

    def __init__(self, broadcast: Broadcast, *, prefix: str = "group:") -> None:
        self.broadcast = broadcast
        self.prefix = prefix

    def channel(self, group: str) -> str:
        """The broadcast channel that carries `group`."""
        if not isinstance(group, str) or not group:
            raise ValueError(f"a group name is a non-empty str, not {group!r}")
        return self.prefix + group

    async def send(self, group: str, text: str) -> None:
        """Send `text` to every member of `group` (raises `PublishError` if the bus is down)."""
        await self.broadcast.publish(self.channel(group), text)

    async def send_json(self, group: str, data: Any) -> None:
        """Send `data` as JSON text to every member of `group`."""
        await self.send(group, dumps(data))

    def member(self, websocket: TextSocket, *groups: str) -> GroupMember:
        """Membership of an accepted `websocket`, joined to `groups`; use with `async with`."""
        return GroupMember(self, websocket, groups)


class GroupMember:
    """One WebSocket's membership: its groups' messages are sent to it while it lasts.

    Messages go to the socket in the order the bus delivered them. A socket that reads
    so slowly that more than the broadcast's `max_queue` messages wait is closed with
    code 1008 rather than buffered without end.
    """

    def __init__(self, groups: Groups, websocket: TextSocket, initial: tuple[str, ...]) -> None:
        self._groups = groups
        self._websocket = websocket
        self._names: set[str] = set()
        self._initial = initial
        self._subscription: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def groups(self) -> frozenset[str]:
        """The groups this socket belongs to now."""
        return frozenset(self._names)

    async def __aenter__(self) -> GroupMember:
        channels = [self._groups.channel(group) for group in self._initial]
        subscription = self._groups.broadcast.subscribe(*channels)
        await subscription.__aenter__()
        self._subscription = subscription
        self._names.update(self._initial)
        self._task = asyncio.create_task(self._forward(subscription), name="dartle group member")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        subscription, self._subscription = self._subscription, None
        self._names.clear()
        if subscription is not None:
            await subscription.close()

    def _open_subscription(self) -> Subscription:
        if self._subscription is None:
            raise RuntimeError("the membership is not active: use it as `async with groups.member(...)`")
        return self._subscription

    async def join(self, group: str) -> None:
        """Join `group`: from when this returns, what is sent to it reaches this socket."""
        await self._open_subscription().add(self._groups.channel(group))
        self._names.add(group)

    async def leave(self, group: str) -> None:
        """Leave `group` (messages of it already on the way may still arrive)."""
        self._names.discard(group)
        await self._open_subscription().remove(self._groups.channel(group))

    async def send(self, group: str, text: str) -> None:
        """Send `text` to every member of `group` (this one included, if it belongs)."""
        await self._groups.send(group, text)

    async def send_json(self, group: str, data: Any) -> None:
        """Send `data` as JSON text to every member of `group`."""
        await self._groups.send_json(group, data)

    async def _forward(self, subscription: Subscription) -> None:
        websocket = self._websocket
        try:
            async for event in subscription:
                await websocket.send_text(event.message)
        except (WebSocketDisconnect, RuntimeError, OSError):
            return  # the client left: the handler's receive loop ends the membership
        except SubscriberOverflow as exc:
            logger.warning("closing a WebSocket that fell behind: %s", exc)
            await self._close(TOO_SLOW, "too slow: group messages piled up unread")
        except Exception:
            logger.exception("forwarding group messages to a WebSocket failed")
            await self._close(INTERNAL_ERROR, "")

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await self._websocket.close(code, reason)
