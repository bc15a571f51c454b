"""`Broadcast` in one process, on memory:// and on a real redis-server.

Every wait is bounded by `asyncio.wait_for` so that a message that never comes fails the
test instead of hanging it; no wait stands in for an event.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from dartle.web.pubsub import (
    Broadcast,
    BroadcastUnavailable,
    Event,
    PublishError,
    SubscriberOverflow,
    Subscription,
)
from tests.pubsub.support import RedisServer
from tests.support.services import free_port, require_binary

WAIT = 20.0


async def receive(subscription: Subscription, count: int = 1) -> list[Event]:
    async def take() -> list[Event]:
        return [await subscription.__anext__() for _ in range(count)]

    return await asyncio.wait_for(take(), WAIT)


async def next_state(states: AsyncIterator[bool]) -> bool:
    return await asyncio.wait_for(states.__anext__(), WAIT)


async def test_every_subscriber_gets_every_message_in_order(bus_url: str) -> None:
    async with (
        Broadcast(bus_url) as broadcast,
        broadcast.subscribe("news") as first,
        broadcast.subscribe("news") as second,
        broadcast.subscribe("other") as other,
    ):
        for n in range(100):
            await broadcast.publish("news", f"n{n}")
        await broadcast.publish("other", "o")
        expected = [Event("news", f"n{n}") for n in range(100)]
        assert await receive(first, 100) == expected
        assert await receive(second, 100) == expected
        assert await receive(other) == [Event("other", "o")]


async def test_concurrent_publishers_keep_their_own_order(bus_url: str) -> None:
    async with Broadcast(bus_url) as broadcast, broadcast.subscribe("mix") as subscription:

        async def publisher(name: str) -> None:
            for n in range(50):
                await broadcast.publish("mix", f"{name}:{n}")

        await asyncio.gather(*(publisher(f"p{i}") for i in range(4)))
        events = await receive(subscription, 200)
        for i in range(4):
            mine = [e.message for e in events if e.message.startswith(f"p{i}:")]
            assert mine == [f"p{i}:{n}" for n in range(50)]


async def test_add_and_remove_channels(bus_url: str) -> None:
    async with Broadcast(bus_url) as broadcast, broadcast.subscribe("a") as subscription:
        await subscription.add("b")
        assert subscription.channels == {"a", "b"}
        await broadcast.publish("b", "1")
        await broadcast.publish("a", "2")
        assert await receive(subscription, 2) == [Event("b", "1"), Event("a", "2")]
        await subscription.remove("b")
        await broadcast.publish("b", "3")
        await broadcast.publish("a", "4")
        # The message to "a" was published after the one to "b": had "b" still been
        # received, it would have come first.
        assert await receive(subscription) == [Event("a", "4")]


async def test_redis_subscribes_once_per_process_and_unsubscribes_when_the_last_leaves(
    redis: RedisServer,
) -> None:
    client = aioredis.from_url(redis.url)
    try:
        async with Broadcast(redis.url) as broadcast:
            async with broadcast.subscribe("room") as first:
                async with broadcast.subscribe("room"):
                    assert await client.pubsub_numsub("room") == [(b"room", 1)]
                assert await client.pubsub_numsub("room") == [(b"room", 1)]
                await broadcast.publish("room", "still here")
                assert await receive(first) == [Event("room", "still here")]
            # Leaving returns once Redis confirmed the UNSUBSCRIBE.
            assert await client.pubsub_numsub("room") == [(b"room", 0)]
    finally:
        await client.aclose()


async def test_a_slow_subscriber_is_dropped_not_the_others(bus_url: str) -> None:
    async with (
        Broadcast(bus_url, max_queue=3) as broadcast,
        broadcast.subscribe("feed") as slow,
        broadcast.subscribe("feed", max_queue=100) as fast,
    ):
        for n in range(10):
            await broadcast.publish("feed", str(n))
        assert [e.message for e in await receive(fast, 10)] == [str(n) for n in range(10)]
        with pytest.raises(SubscriberOverflow, match="more than 3 messages waited unread"):
            await slow.__anext__()
        await broadcast.publish("feed", "after")
        assert await receive(fast) == [Event("feed", "after")]
        with pytest.raises(SubscriberOverflow):
            await slow.__anext__()


async def test_disconnect_ends_subscriptions_and_watchers(bus_url: str) -> None:
    broadcast = Broadcast(bus_url)
    await broadcast.connect()
    states = broadcast.watch_connection()
    assert await next_state(states) is True
    async with broadcast.subscribe("x") as subscription:
        reader = asyncio.ensure_future(receive(subscription, 1))
        await broadcast.disconnect()
        with pytest.raises(StopAsyncIteration):
            await reader
        with pytest.raises(StopAsyncIteration):
            await next_state(states)
    assert broadcast.connected is False


async def test_bad_urls_and_misuse_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="unsupported broadcast URL 'kafka://x'"):
        Broadcast("kafka://x")
    with pytest.raises(ValueError, match="takes no host or path"):
        Broadcast("memory://somewhere")
    with pytest.raises(ValueError, match="Port could not be cast"):
        Broadcast("redis://127.0.0.1:notaport/0")
    broadcast = Broadcast("memory://")
    with pytest.raises(RuntimeError, match=r"not connected; call `await broadcast\.connect"):
        await broadcast.publish("a", "b")
    with pytest.raises(RuntimeError, match="cannot subscribe"):
        async with broadcast.subscribe("a"):
            pass
    async with broadcast:
        with pytest.raises(TypeError, match="a message is a str"):
            await broadcast.publish("a", b"bytes")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="non-empty str"):
            await broadcast.publish("", "b")
        with pytest.raises(RuntimeError, match="already connected"):
            await broadcast.connect()
        subscription = broadcast.subscribe("a")
        async with subscription:
            with pytest.raises(RuntimeError, match="entered only once"):
                await subscription.__aenter__()


async def test_unreachable_redis_fails_connect_without_showing_the_password() -> None:
    port = free_port()  # nothing listens there
    broadcast = Broadcast(f"redis://user:s3cret@127.0.0.1:{port}/0", connect_timeout=5)
    with pytest.raises(BroadcastUnavailable) as info:
        await broadcast.connect()
    message = str(info.value)
    assert f"cannot reach Redis at redis://user:***@127.0.0.1:{port}/0" in message
    assert "s3cret" not in message and "s3cret" not in repr(broadcast)
    assert broadcast.connected is False


async def test_a_unix_socket_url_works_and_its_password_is_hidden(tmp_path: Path) -> None:
    redis = RedisServer(require_binary("redis-server"), 0, tmp_path, unix_socket=tmp_path / "redis.sock")
    redis.start()
    try:
        async with Broadcast(redis.url) as broadcast, broadcast.subscribe("u") as subscription:
            await broadcast.publish("u", "over a unix socket")
            assert await receive(subscription) == [Event("u", "over a unix socket")]
    finally:
        redis.stop()
    hidden = Broadcast(f"unix://{tmp_path}/redis.sock?db=0&password=s3cret")
    assert repr(hidden) == f"Broadcast('unix://{tmp_path}/redis.sock?db=0&password=***')"


async def test_publishing_while_redis_is_down_raises_and_subscribers_recover(redis: RedisServer) -> None:
    async with (
        Broadcast(redis.url, reconnect_max_delay=0.5) as broadcast,
        broadcast.subscribe("chat") as subscription,
    ):
        states = broadcast.watch_connection()
        assert await next_state(states) is True
        await broadcast.publish("chat", "before")
        assert await receive(subscription) == [Event("chat", "before")]

        redis.kill()
        assert await next_state(states) is False
        with pytest.raises(PublishError) as info:
            await broadcast.publish("chat", "lost?")
        assert info.value.channel == "chat"
        assert f"message to channel 'chat' not published: Redis at {redis.url}" in str(info.value)

        redis.start()
        assert await next_state(states) is True  # reconnected and subscribed again
        await broadcast.publish("chat", "after")
        assert await receive(subscription) == [Event("chat", "after")]


async def test_connect_without_waiting_starts_while_redis_is_down(tmp_path: Path) -> None:
    redis = RedisServer(require_binary("redis-server"), free_port(), tmp_path)
    broadcast = Broadcast(redis.url, reconnect_max_delay=0.5)
    await broadcast.connect(wait=False)
    try:
        states = broadcast.watch_connection()
        assert await next_state(states) is False
        with pytest.raises(PublishError, match="is unreachable"):
            await broadcast.publish("jobs", "1")
        async with broadcast.subscribe("jobs") as subscription:  # does not wait for the bus
            redis.start()
            assert await next_state(states) is True
            await broadcast.publish("jobs", "2")
            assert await receive(subscription) == [Event("jobs", "2")]
    finally:
        await broadcast.disconnect()
        redis.stop()


async def test_a_frozen_redis_is_noticed_by_ping_and_publish_timeout(redis: RedisServer) -> None:
    async with (
        Broadcast(redis.url, ping_interval=0.3, publish_timeout=0.5, reconnect_max_delay=0.5) as broadcast,
        broadcast.subscribe("t") as subscription,
    ):
        states = broadcast.watch_connection()
        assert await next_state(states) is True
        assert redis.proc is not None
        os.kill(redis.proc.pid, signal.SIGSTOP)  # connections stay open; nothing answers
        try:
            with pytest.raises(PublishError, match=r"did not answer within 0\.5 s"):
                await broadcast.publish("t", "frozen")
            assert await next_state(states) is False  # the ping went unanswered
        finally:
            os.kill(redis.proc.pid, signal.SIGCONT)
        assert await next_state(states) is True
        await broadcast.publish("t", "thawed")
        # The frozen publish reached Redis's socket and may be delivered once Redis
        # runs again, before or after the subscriber is back: only what follows counts.
        messages = [e.message for e in await receive(subscription)]
        if messages == ["frozen"]:
            messages = [e.message for e in await receive(subscription)]
        assert messages == ["thawed"]
