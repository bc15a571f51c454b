"""`Broadcast`: publish to channels, subscribe to them, in one process or across many.

    broadcast = Broadcast("redis://127.0.0.1:6379/0")     # or "memory://"

    async with broadcast:                                  # in the app's lifespan
        async with broadcast.subscribe("news") as subscription:
            await broadcast.publish("news", "hello")
            async for event in subscription:               # Event(channel, message)
                ...

Each process subscribes to a channel on the bus once, however many local subscribers
it has, and fans each message out to them itself; every subscriber has its own bounded
queue, so one slow reader neither slows the others nor makes memory grow.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType

from dartle.web.pubsub.backend import Backend, MemoryBackend
from dartle.web.pubsub.errors import SubscriberOverflow

__all__ = ["Broadcast", "Event", "Subscription"]

DEFAULT_MAX_QUEUE = 1000


@dataclass(frozen=True, slots=True)
class Event:
    """One message received on `channel`."""

    channel: str
    message: str


def _check_channel(channel: object) -> str:
    if not isinstance(channel, str) or not channel:
        raise ValueError(f"a channel name is a non-empty str, not {channel!r}")
    return channel


class Subscription:
    """The messages of one or more channels, in the order the bus delivered them.

    Use it as an async context manager: entering subscribes (and returns once the bus
    has confirmed, so a message published afterwards is received), leaving unsubscribes.
    Inside, iterate it with `async for`; the iteration ends when the broadcast
    disconnects, and raises `SubscriberOverflow` if more than `max_queue` messages
    waited unread. `add()` and `remove()` change the channels while it is open.
    """

    def __init__(self, broadcast: Broadcast, channels: tuple[str, ...], max_queue: int) -> None:
        self._broadcast = broadcast
        self._channels: set[str] = set()
        self._initial = tuple(dict.fromkeys(_check_channel(c) for c in channels))
        self._queue: deque[Event] = deque()
        self._max_queue = max_queue
        self._waiter: asyncio.Future[None] | None = None
        self._entered = False
        self._open = False
        self._overflowed = False

    @property
    def channels(self) -> frozenset[str]:
        """The channels this subscription currently receives."""
        return frozenset(self._channels)

    async def __aenter__(self) -> Subscription:
        if self._entered:
            raise RuntimeError("a Subscription can be entered only once; call subscribe() again")
        self._broadcast._check_started("subscribe")
        self._entered = self._open = True
        try:
            for channel in self._initial:
                await self.add(channel)
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def add(self, channel: str) -> None:
        """Also receive `channel` (returns once the bus confirmed the subscription)."""
        _check_channel(channel)
        if not self._open:
            raise RuntimeError("the subscription is not open: use it as `async with`")
        if channel in self._channels:
            return
        self._channels.add(channel)
        await self._broadcast._attach(self, channel)

    async def remove(self, channel: str) -> None:
        """Stop receiving `channel` (messages of it already queued are still read)."""
        if channel in self._channels:
            self._channels.discard(channel)
            await self._broadcast._detach(self, channel)

    async def close(self) -> None:
        """Unsubscribe from every channel and end the iteration."""
        self._end()
        channels, self._channels = self._channels, set()
        for channel in channels:
            await self._broadcast._detach(self, channel)

    def _end(self) -> None:
        self._open = False
        self._wake()

    def _push(self, event: Event) -> None:
        if not self._open or self._overflowed:
            return
        if len(self._queue) >= self._max_queue:
            # Drop the subscriber rather than the message: a gap it cannot see would be
            # worse than an error it can handle.
            self._overflowed = True
            self._queue.clear()
        else:
            self._queue.append(event)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        while True:
            if self._overflowed:
                raise SubscriberOverflow(
                    f"subscriber of {sorted(self._channels)} dropped: more than "
                    f"{self._max_queue} messages waited unread"
                )
            if self._queue:
                return self._queue.popleft()
            if not self._open:
                raise StopAsyncIteration
            if self._waiter is not None:
                raise RuntimeError("another task is already reading this subscription")
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None


class _Channel:
    """The local subscribers of one channel, and whether the bus confirmed it."""

    __slots__ = ("ready", "subscribers")

    def __init__(self) -> None:
        self.subscribers: set[Subscription] = set()
        self.ready = asyncio.Event()


class Broadcast:
    """Publish/subscribe over a bus named by `url`.

    url: `memory://` (this process only) or `redis://[user:password@]host:port/db`
        (also `rediss://` for TLS and `unix:///path.sock?db=0`), which needs the
        `redis` package (`pip install 'dartle[redis]'`).
    max_queue: messages a subscriber may leave unread before it is dropped.
    connect_timeout: seconds to connect to the bus and to wait for confirmations.
    publish_timeout: seconds a publish may wait for the bus before it fails.
    reconnect_max_delay: the longest pause between two reconnection attempts
        (the pause doubles from 0.1 s up to this, with jitter).
    ping_interval: a silent bus connection is pinged after this many seconds, and
        given up (then reconnected) if the answer does not come as long again.

    Connect it in the app's lifespan (`async with broadcast:` or `connect()` and
    `disconnect()`); each worker process has its own connection.
    """

    def __init__(
        self,
        url: str,
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
        connect_timeout: float = 5.0,
        publish_timeout: float = 5.0,
        reconnect_max_delay: float = 5.0,
        ping_interval: float = 10.0,
    ) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self.url = url
        self.max_queue = max_queue
        self._backend = _make_backend(
            url,
            connect_timeout=connect_timeout,
            publish_timeout=publish_timeout,
            reconnect_max_delay=reconnect_max_delay,
            ping_interval=ping_interval,
        )
        self._channels: dict[str, _Channel] = {}
        self._started = False
        self._connected = False
        self._changed: asyncio.Event | None = None

    def __repr__(self) -> str:
        return f"Broadcast({self._backend.description!r})"

    @property
    def description(self) -> str:
        """The bus, without credentials: safe to log or show."""
        return self._backend.description

    # -- lifecycle ------------------------------------------------------------------------

    async def connect(self, *, wait: bool = True) -> None:
        """Connect to the bus.

        With `wait` (the default), raise `BroadcastUnavailable` if it cannot be reached
        within `connect_timeout`. With `wait=False`, return at once and keep trying in
        the background: publishing fails and subscribers receive nothing until the bus
        is up (see `connected` and `watch_connection()`). A worker that restarts while
        the bus is down then still starts.
        """
        if self._started:
            raise RuntimeError(f"{self!r} is already connected")
        self._changed = asyncio.Event()
        self._connected = False
        self._started = True
        try:
            await self._backend.start(self, wait)
        except BaseException:
            self._started = False
            raise

    async def disconnect(self) -> None:
        """Disconnect; open subscriptions end their iteration."""
        if not self._started:
            return
        self._started = False
        for entry in self._channels.values():
            for subscription in entry.subscribers:
                subscription._end()
        self._channels.clear()
        try:
            await self._backend.stop()
        finally:
            self.set_connected(False)
            self._notify()

    async def __aenter__(self) -> Broadcast:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.disconnect()

    def _check_started(self, action: str) -> None:
        if not self._started:
            raise RuntimeError(
                f"cannot {action}: {self!r} is not connected; call `await broadcast.connect()` "
                "(or `async with broadcast:`) in the app's lifespan first"
            )

    # -- publishing and subscribing -------------------------------------------------------

    async def publish(self, channel: str, message: str) -> None:
        """Send `message` to every subscriber of `channel`, in every process.

        Raises `PublishError` when the bus is down or does not answer within
        `publish_timeout`: the message is never dropped silently. Messages one task
        publishes one after the other arrive in that order.
        """
        _check_channel(channel)
        if not isinstance(message, str):
            raise TypeError(f"a message is a str (serialise it first), not {type(message).__name__}")
        self._check_started("publish")
        await self._backend.publish(channel, message)

    def subscribe(self, *channels: str, max_queue: int | None = None) -> Subscription:
        """A `Subscription` to `channels`, to use as `async with ... as subscription`.

        `max_queue` overrides the broadcast's limit of unread messages for this one.
        """
        limit = self.max_queue if max_queue is None else max_queue
        if limit < 1:
            raise ValueError("max_queue must be at least 1")
        return Subscription(self, channels, limit)

    async def _attach(self, subscription: Subscription, channel: str) -> None:
        self._check_started("subscribe")
        entry = self._channels.get(channel)
        if entry is None:
            entry = self._channels[channel] = _Channel()
            entry.subscribers.add(subscription)
            try:
                await self._backend.subscribe(channel)
            finally:
                entry.ready.set()
        else:
            entry.subscribers.add(subscription)
            await entry.ready.wait()

    async def _detach(self, subscription: Subscription, channel: str) -> None:
        entry = self._channels.get(channel)
        if entry is None:
            return
        entry.subscribers.discard(subscription)
        if not entry.subscribers:
            del self._channels[channel]
            if self._started:
                await self._backend.unsubscribe(channel)

    # -- connection state -----------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether messages can flow through the bus right now."""
        return self._connected

    async def watch_connection(self) -> AsyncIterator[bool]:
        """Yield `connected` now, then each time it changes; ends at `disconnect()`.

        While the bus is down, messages published by other processes do not reach
        this one (pub/sub does not queue); a `True` after a `False` is the moment to
        refresh what a client may have missed.
        """
        self._check_started("watch the connection")
        seen: bool | None = None
        while self._started:
            changed = self._changed
            assert changed is not None
            if self._connected is not seen:
                seen = self._connected
                yield seen
                continue
            await changed.wait()

    def _notify(self) -> None:
        # Waiters wait on the current event; a fresh one replaces it before it fires,
        # so nobody has to register (or unregister) to be told.
        changed = self._changed
        if changed is not None:
            self._changed = asyncio.Event()
            changed.set()

    # -- the Hub interface the backend calls ----------------------------------------------

    def deliver(self, channel: str, message: str) -> None:
        """Hand `message` to the local subscribers of `channel` (called by the backend)."""
        entry = self._channels.get(channel)
        if entry is not None:
            event = Event(channel, message)
            for subscription in entry.subscribers:
                subscription._push(event)

    def set_connected(self, connected: bool) -> None:
        """Record whether the bus is up (called by the backend)."""
        if connected is not self._connected:
            self._connected = connected
            self._notify()

    def channels(self) -> list[str]:
        """The channels with local subscribers (called by the backend)."""
        return list(self._channels)


def _make_backend(
    url: str,
    *,
    connect_timeout: float,
    publish_timeout: float,
    reconnect_max_delay: float,
    ping_interval: float,
) -> Backend:
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if sep and scheme == "memory":
        if rest.strip("/"):
            raise ValueError(f"a memory:// broadcast takes no host or path: {url!r}")
        return MemoryBackend()
    if sep and scheme in ("redis", "rediss", "unix"):
        # Imported here so that redis is needed only by apps that use it.
        from dartle.web.pubsub.redis_backend import RedisBackend

        return RedisBackend(
            url,
            connect_timeout=connect_timeout,
            publish_timeout=publish_timeout,
            reconnect_max_delay=reconnect_max_delay,
            ping_interval=ping_interval,
        )
    raise ValueError(
        f"unsupported broadcast URL {url!r}: use memory:// (one process) or "
        "redis://host:port/db (several processes or machines)"
    )
