"""The Redis backend: pub/sub through redis.asyncio, one subscriber connection per process.

A background task owns the subscriber connection. It subscribes to every channel with
local subscribers, hands the messages it reads to the broadcast, pings when the line is
quiet, and when the connection breaks it reports the bus down, waits (0.1 s doubling
up to `reconnect_max_delay`, with jitter), connects again and subscribes again. The bus
is reported up only once Redis has confirmed every subscription.

Publishing uses a small pool of other connections and never retries on its own: a
command that may have reached Redis is not sent twice (a retry could deliver a message
twice), and a failure is an error to the caller, never a silent drop.

redis-py's own reconnect-and-resubscribe is not relied on: each new connection starts
from a fresh `PubSub` built from what the broadcast needs now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from dartle.web.pubsub.backend import Hub
from dartle.web.pubsub.errors import BroadcastUnavailable, PublishError

try:
    import redis.asyncio as aioredis
    from redis.asyncio.client import PubSub
    from redis.asyncio.connection import parse_url
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import RedisError, TimeoutError as RedisTimeout
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "a redis:// broadcast needs the redis package: pip install 'dartle[redis]'"
    ) from exc

__all__ = ["RedisBackend"]

logger = logging.getLogger("dartle.web.pubsub")

MIN_RECONNECT_DELAY = 0.1
# Publishing connections per process; a publisher waits (up to publish_timeout) for one.
MAX_PUBLISH_CONNECTIONS = 16
_CONNECTION_ERRORS = (RedisError, OSError)


def redact(url: str) -> str:
    """`url` without its password (in the authority or the query), for logs and errors."""
    parts = urlsplit(url)
    if parts.password is not None:
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{host}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "password" for key, _ in query):
        hidden = [(key, "***" if key == "password" else value) for key, value in query]
        parts = parts._replace(query=urlencode(hidden, safe="*"))
    redacted = urlunsplit(parts)
    scheme = parts.scheme + ":"
    if not parts.netloc and url.startswith(scheme + "//"):
        redacted = scheme + "//" + redacted[len(scheme):]  # unix:///path keeps its slashes
    return redacted


class RedisBackend:
    """A bus of Redis pub/sub channels (`redis://`, `rediss://`, `unix://`)."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float,
        publish_timeout: float,
        reconnect_max_delay: float,
        ping_interval: float,
    ) -> None:
        parse_url(url)  # a malformed URL is an error now, not at the first connection
        self.description = redact(url)
        self._url = url
        self._connect_timeout = connect_timeout
        self._publish_timeout = publish_timeout
        self._reconnect_max_delay = max(reconnect_max_delay, MIN_RECONNECT_DELAY)
        self._ping_interval = ping_interval
        self._hub: Hub | None = None
        self._client: aioredis.Redis | None = None
        self._subscriber_client: aioredis.Redis | None = None
        self._lock: asyncio.Lock | None = None
        self._pubsub: PubSub | None = None
        # Waiters for Redis's answers to SUBSCRIBE and UNSUBSCRIBE, by (kind, channel).
        self._confirmations: dict[tuple[str, str], deque[asyncio.Future[None]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._session_up = False
        # The current outage, for the log line that reports its end.
        self._down_since: float | None = None
        self._attempts = 0

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, hub: Hub, wait: bool) -> None:
        self._hub = hub
        self._lock = asyncio.Lock()
        # RESP2: with RESP3, redis-py 8.1 skips the pool's check for connections the
        # server closed (redis/redis-py#4260), so the first publish after a Redis
        # restart would fail on a dead pooled connection.
        options: dict[str, Any] = {
            "protocol": 2,
            "retry": Retry(NoBackoff(), 0),
            "socket_connect_timeout": self._connect_timeout,
        }
        pool = aioredis.BlockingConnectionPool.from_url(
            self._url,
            max_connections=MAX_PUBLISH_CONNECTIONS,
            timeout=self._publish_timeout,
            socket_timeout=self._publish_timeout,
            **options,
        )
        self._client = aioredis.Redis.from_pool(pool)
        # Its own pool: a subscriber connection, even a broken one, never serves a publish.
        self._subscriber_client = aioredis.Redis.from_url(
            self._url, socket_timeout=self._connect_timeout, **options
        )
        first: asyncio.Future[None] | None = None
        if wait:
            first = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(first), name=f"dartle pubsub {self.description}")
        if first is None:
            return
        try:
            await asyncio.wait_for(first, self._connect_timeout)
        except BaseException as exc:
            await self.stop()
            if isinstance(exc, asyncio.TimeoutError):
                detail = f"no answer within {self._connect_timeout} s"
            elif isinstance(exc, Exception):
                detail = str(exc) or type(exc).__name__
            else:
                raise
            raise BroadcastUnavailable(f"cannot reach Redis at {self.description}: {detail}") from exc

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for client in (self._client, self._subscriber_client):
            if client is not None:
                with contextlib.suppress(*_CONNECTION_ERRORS):
                    await client.aclose()
        self._client = self._subscriber_client = None
        self._hub = None

    # -- publishing -----------------------------------------------------------------------

    async def publish(self, channel: str, message: str) -> None:
        client = self._client
        assert client is not None, "Broadcast checks that it is connected"
        try:
            await client.publish(channel, message)
        except RedisTimeout as exc:
            raise PublishError(
                channel,
                f"Redis at {self.description} did not answer within {self._publish_timeout} s "
                f"({exc}); the message may or may not have been delivered",
            ) from exc
        except _CONNECTION_ERRORS as exc:
            raise PublishError(channel, f"Redis at {self.description} is unreachable ({exc})") from exc

    # -- subscribing ----------------------------------------------------------------------

    async def subscribe(self, channel: str) -> None:
        await self._command("subscribe", channel)

    async def unsubscribe(self, channel: str) -> None:
        await self._command("unsubscribe", channel)

    async def _command(self, kind: str, channel: str) -> None:
        """SUBSCRIBE or UNSUBSCRIBE `channel`; returns once Redis confirmed (or went away)."""
        lock = self._lock
        assert lock is not None
        async with lock:
            pubsub = self._pubsub
            if pubsub is None:
                return  # down: the next connection subscribes to what is wanted then
            # Registered before sending: the confirmation may be read while we send.
            confirmed = asyncio.get_running_loop().create_future()
            self._confirmations.setdefault((kind, channel), deque()).append(confirmed)
            try:
                if kind == "subscribe":
                    await pubsub.subscribe(channel)
                else:
                    await pubsub.unsubscribe(channel)
            except _CONNECTION_ERRORS:
                # The reader sees the same broken connection, reconnects and
                # subscribes again to the channels wanted then.
                confirmed.cancel()
                return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(confirmed, self._connect_timeout)

    def _confirm(self, kind: str, channel: str) -> None:
        key = (kind, channel)
        queue = self._confirmations.get(key)
        while queue:
            confirmed = queue.popleft()
            if not confirmed.done():
                confirmed.set_result(None)
                break
        if not queue:
            self._confirmations.pop(key, None)

    def _release_confirmations(self) -> None:
        # Subscribers waiting for a confirmation go on: their channels are subscribed
        # again when the connection is back.
        for queue in self._confirmations.values():
            for confirmed in queue:
                if not confirmed.done():
                    confirmed.set_result(None)
        self._confirmations.clear()

    # -- the subscriber connection --------------------------------------------------------

    async def _run(self, first: asyncio.Future[None] | None) -> None:
        hub = self._hub
        assert hub is not None
        delay = MIN_RECONNECT_DELAY
        while True:
            try:
                await self._session(first)
                error: BaseException = ConnectionError("the connection ended")
            except Exception as exc:
                error = exc
            hub.set_connected(False)
            if first is not None and not first.done():
                first.set_exception(error)  # start() reports it; no retrying behind its back
                return
            first = None
            if self._session_up:
                self._session_up = False
                delay = MIN_RECONNECT_DELAY
                self._down_since, self._attempts = time.monotonic(), 0
                logger.warning(
                    "lost the connection to Redis at %s (%s); reconnecting", self.description, error
                )
            elif self._down_since is None:
                self._down_since, self._attempts = time.monotonic(), 0
                logger.warning(
                    "cannot reach Redis at %s (%s); retrying in the background", self.description, error
                )
            else:
                logger.debug("Redis at %s still unreachable: %s", self.description, error)
            if not isinstance(error, _CONNECTION_ERRORS):
                logger.error("unexpected error in the Redis subscriber", exc_info=error)
            self._attempts += 1
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, self._reconnect_max_delay)

    async def _session(self, first: asyncio.Future[None] | None) -> None:
        """One subscriber connection, from connect to loss (returns only by raising)."""
        hub, client, lock = self._hub, self._subscriber_client, self._lock
        assert hub is not None and client is not None and lock is not None
        pubsub = client.pubsub()
        try:
            await pubsub.connect()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            async with lock:
                channels = hub.channels()
                self._pubsub = pubsub
                if channels:
                    await pubsub.subscribe(*channels)
                else:
                    await pubsub.ping()
            pending = set(channels)
            waiting_for_pong = not channels
            while True:
                message: dict[str, Any] | None = await pubsub.get_message(timeout=self._ping_interval)
                if message is None:
                    if waiting_for_pong:
                        raise ConnectionError(f"no answer to PING within {self._ping_interval} s")
                    await pubsub.ping()
                    waiting_for_pong = True
                    continue
                kind = message["type"]
                if kind == "message":
                    hub.deliver(_text(message["channel"]), _text(message["data"]))
                    # One read can hold hundreds of messages: let the subscribers take
                    # each before the next, or a burst would overflow their queues.
                    await asyncio.sleep(0)
                elif kind == "subscribe":
                    channel = _text(message["channel"])
                    pending.discard(channel)
                    self._confirm(kind, channel)
                elif kind == "unsubscribe":
                    self._confirm(kind, _text(message["channel"]))
                elif kind == "pong":
                    waiting_for_pong = False
                if not self._session_up and not pending and not waiting_for_pong:
                    self._up(first)
        finally:
            self._pubsub = None
            self._release_confirmations()
            with contextlib.suppress(*_CONNECTION_ERRORS):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _up(self, first: asyncio.Future[None] | None) -> None:
        assert self._hub is not None
        self._session_up = True
        self._hub.set_connected(True)
        if first is not None and not first.done():
            first.set_result(None)
        if self._down_since is None:
            logger.info("connected to Redis at %s", self.description)
            return
        logger.warning(
            "reconnected to Redis at %s after %.1f s (%d attempts); subscriptions restored",
            self.description,
            time.monotonic() - self._down_since,
            self._attempts,
        )
        self._down_since = None


def _text(value: bytes | str) -> str:
    return value if isinstance(value, str) else value.decode("utf-8", "replace")
