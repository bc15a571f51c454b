"""examples/chat.py scaled out: two dartle worker processes sharing a real redis-server.

Clients land on both workers (each greeting names its worker's PID, and the tests
assert that both are used). A message sent through one worker must reach the clients
of the other, none lost, none twice, each publisher's in the order it sent them; and
when Redis is killed and started again, the workers subscribe again by themselves.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.pubsub.support import BOTH_WORKERS_SERVING, ChatClient, RedisServer, open_clients
from tests.support.servers import ServerProcess, run_server

WAIT = 120.0

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def chat_cluster(redis: RedisServer) -> Iterator[ServerProcess]:
    """`dartle run examples.chat:app --workers 2` with Redis as the bus."""
    with run_server("examples.chat:app", "--workers", "2", env={"CHAT_REDIS_URL": redis.url}) as server:
        # The address line comes when the first worker serves; wait for the second too.
        server.wait_for_log(BOTH_WORKERS_SERVING, timeout=30)
        yield server


def publishers_on_each_worker(clients: list[ChatClient], per_worker: int) -> list[ChatClient]:
    workers = Counter(client.worker for client in clients)
    assert len(workers) == 2, f"all clients landed on one worker: {workers}"
    chosen: list[ChatClient] = []
    for worker in workers:
        chosen += [client for client in clients if client.worker == worker][:per_worker]
    return chosen


async def send_round(publishers: list[ChatClient], clients: list[ChatClient], label: str, count: int) -> None:
    """Each publisher sends `count` numbered messages, then an end mark; every client
    must receive exactly those, each publisher's in order."""

    async def publish(index: int, publisher: ChatClient) -> None:
        for n in range(count):
            await publisher.say(f"{label}-p{index}:{n}")
        await publisher.say(f"{label}-p{index}:end")

    async def collect(client: ChatClient) -> dict[str, list[str]]:
        by_publisher: dict[str, list[str]] = {f"{label}-p{i}": [] for i in range(len(publishers))}
        ended = 0
        while ended < len(publishers):
            message = await client.next("message")
            tag, _, seq = message["text"].partition(":")
            if seq == "end":
                ended += 1
            else:
                by_publisher[tag].append(seq)
        return by_publisher

    collectors = [asyncio.ensure_future(collect(client)) for client in clients]
    await asyncio.gather(*(publish(i, p) for i, p in enumerate(publishers)))
    results = await asyncio.wait_for(asyncio.gather(*collectors), WAIT)
    expected = [str(n) for n in range(count)]
    for client, by_publisher in zip(clients, results, strict=True):
        for tag, seqs in by_publisher.items():
            assert seqs == expected, f"client on worker {client.worker}, publisher {tag}: {seqs}"


async def test_fan_out_to_200_clients_across_two_workers(chat_cluster: ServerProcess) -> None:
    clients = await open_clients(chat_cluster.url, "fanout", 200)
    try:
        publishers = publishers_on_each_worker(clients, per_worker=2)
        # 4 publishers x 50 messages to 200 clients: 40,000 deliveries, half of them
        # crossing from one worker to the other through Redis.
        await send_round(publishers, clients, "fanout", 50)
    finally:
        await asyncio.gather(*(client.close() for client in clients))


async def test_workers_recover_when_redis_restarts(chat_cluster: ServerProcess, redis: RedisServer) -> None:
    # The kernel hands each accept to whichever worker wakes first, so on a busy machine a
    # small group can land on one worker: add clients (bounded) until both have some.
    clients = await open_clients(chat_cluster.url, "restart", 20)
    for batch in range(1, 10):
        if len({client.worker for client in clients}) == 2:
            break
        clients += await open_clients(chat_cluster.url, "restart", 20, prefix=f"b{batch}-")
    try:
        publishers = publishers_on_each_worker(clients, per_worker=1)
        await send_round(publishers, clients, "before", 20)

        redis.kill()
        downs = await asyncio.wait_for(asyncio.gather(*(c.next("bus") for c in clients)), WAIT)
        assert all(message["connected"] is False for message in downs)

        # Publishing while Redis is down is an error the sender hears about.
        await publishers[0].say("into the void")
        error = await asyncio.wait_for(publishers[0].next("error"), WAIT)
        assert error == {
            "type": "error",
            "detail": "not sent: the message bus is unreachable",
            "text": "into the void",
        }
        assert b"message to channel 'chat:restart' not published" in chat_cluster.read_log(0.5)

        redis.start()
        ups = await asyncio.wait_for(asyncio.gather(*(c.next("bus") for c in clients)), WAIT)
        assert all(message["connected"] is True for message in ups)
        assert chat_cluster.read_log(0.5).count(b"reconnected to Redis at") == 2

        await send_round(publishers, clients, "after", 20)
    finally:
        await asyncio.gather(*(client.close() for client in clients))
