"""dartle.asgi.concurrency: the bounded pool and the bridges between threads and the loop.

These are helpers with no sockets of their own, tested in-process; over real sockets they
are exercised by the WSGI bridge tests (/bridge, the thread-bound test) and the
framework's sync handlers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import Iterator

import pytest

from dartle.asgi import concurrency
from dartle.asgi.concurrency import (
    async_to_sync,
    get_thread_limit,
    run_async_from_thread,
    run_sync,
    set_thread_limit,
    submit_to_thread,
)

who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


@pytest.fixture
def limit_two() -> Iterator[None]:
    before = get_thread_limit()
    set_thread_limit(2)
    yield
    set_thread_limit(before)


async def test_submit_to_thread_carries_context_and_the_loop() -> None:
    who.set("request 1")
    loop_thread = threading.current_thread()

    async def on_loop() -> tuple[str, bool]:
        return who.get(), threading.current_thread() is loop_thread

    def in_thread() -> tuple[str, str, tuple[str, bool]]:
        seen = who.get()
        who.set("changed in the thread")  # a copy: the caller's value stays
        return seen, threading.current_thread().name, run_async_from_thread(on_loop)

    future = submit_to_thread(in_thread)
    assert isinstance(future, concurrent.futures.Future)
    seen, thread_name, (seen_on_loop, on_loop_thread) = await asyncio.wrap_future(future)
    assert seen == "request 1"
    assert thread_name.startswith("dartle-sync")
    # the coroutine runs on the loop, in the thread's context
    assert (seen_on_loop, on_loop_thread) == ("changed in the thread", True)
    assert who.get() == "request 1"


async def test_async_to_sync_wraps_a_coroutine_function() -> None:
    async def fetch(x: int, *, times: int) -> int:
        await asyncio.sleep(0)
        return x * times

    fetch_sync = async_to_sync(fetch)
    assert fetch_sync.__name__ == "fetch"
    assert await run_sync(lambda: fetch_sync(7, times=6)) == 42


async def test_exceptions_cross_the_bridge() -> None:
    async def fails() -> None:
        raise LookupError("raised on the loop")

    def calls() -> None:
        run_async_from_thread(fails)

    with pytest.raises(LookupError, match="raised on the loop"):
        await run_sync(calls)


def test_bridge_outside_a_pool_thread_names_the_rule() -> None:
    async def nothing() -> None:
        return None

    with pytest.raises(RuntimeError, match=r"must be called from a run_sync\(\) thread"):
        run_async_from_thread(nothing)
    caught: list[BaseException] = []

    def plain_thread() -> None:
        try:
            async_to_sync(nothing)()
        except RuntimeError as exc:
            caught.append(exc)

    thread = threading.Thread(target=plain_thread)
    thread.start()
    thread.join(10)
    assert len(caught) == 1


async def test_pool_bound_queues_the_extra_calls(limit_two: None) -> None:
    release = threading.Event()
    cond = threading.Condition()
    state = {"active": 0, "max": 0}

    def work() -> None:
        with cond:
            state["active"] += 1
            state["max"] = max(state["max"], state["active"])
            cond.notify_all()
        release.wait(10)
        with cond:
            state["active"] -= 1

    tasks = [asyncio.ensure_future(run_sync(work)) for _ in range(4)]
    await asyncio.sleep(0)  # one loop turn: each task submits its call to the pool
    loop = asyncio.get_running_loop()

    def two_running() -> bool:
        with cond:
            return cond.wait_for(lambda: state["active"] == 2, timeout=10)

    try:
        assert await loop.run_in_executor(None, two_running)
        # both threads are busy, so the other two calls wait in the queue
        assert concurrency._executor is not None
        assert concurrency._executor._work_queue.qsize() == 2
    finally:
        release.set()
    await asyncio.gather(*tasks)
    assert state["max"] == 2


def test_thread_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        set_thread_limit(0)
