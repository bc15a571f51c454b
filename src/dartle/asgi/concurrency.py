"""Run blocking code from async code, and async code from that blocking code.

Sync handlers, sync iterators, file I/O and WSGI apps (dartle.asgi.wsgi) run in one
process-wide thread pool whose size is bounded (`set_thread_limit`), so a burst of slow
sync code queues instead of spawning threads without end. Context variables are copied
into the worker thread, as `asyncio.to_thread` does. Code running there can call back
into the event loop with `run_async_from_thread` (or a function wrapped by
`async_to_sync`): that is the bridge from sync handlers to async libraries.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

__all__ = [
    "DEFAULT_THREAD_LIMIT",
    "async_to_sync",
    "get_thread_limit",
    "is_async_callable",
    "iterate_in_threadpool",
    "run_async_from_thread",
    "run_sync",
    "set_thread_limit",
    "submit_to_thread",
]

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_THREAD_LIMIT = 40

_lock = threading.Lock()
_limit = DEFAULT_THREAD_LIMIT
_executor: ThreadPoolExecutor | None = None
_worker = threading.local()


def set_thread_limit(limit: int) -> None:
    """Bound the pool to `limit` threads (process-wide; calls already queued keep running)."""
    global _executor, _limit
    if limit < 1:
        raise ValueError(f"thread limit must be at least 1, got {limit}")
    with _lock:
        old, _executor, _limit = _executor, None, limit
    if old is not None:
        old.shutdown(wait=False)


def get_thread_limit() -> int:
    """The current bound on the pool's threads."""
    return _limit


def _get_executor() -> ThreadPoolExecutor:
    global _executor
    executor = _executor
    if executor is None:
        with _lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(_limit, thread_name_prefix="dartle-sync")
            executor = _executor
    return executor


def _call_in_worker(loop: asyncio.AbstractEventLoop, func: Callable[[], T]) -> T:
    # Remember which loop dispatched us, for run_async_from_thread.
    _worker.loop = loop
    try:
        return func()
    finally:
        _worker.loop = None


def submit_to_thread(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Future[T]:
    """Start `func(*args, **kwargs)` in the bounded pool and return its (thread) future.

    Call it from the event loop. Like `run_sync`, but nothing waits: for bridges (the
    WSGI one) that talk to the loop themselves while the call runs. The caller's
    context variables are copied into the thread, and `run_async_from_thread` works
    there.
    """
    loop = asyncio.get_running_loop()
    ctx = contextvars.copy_context()
    call = functools.partial(ctx.run, func, *args, **kwargs)
    return _get_executor().submit(_call_in_worker, loop, call)


async def run_sync(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run `func(*args, **kwargs)` in the bounded thread pool and await its result.

    The caller's context variables are visible in the thread (a copy: values the
    function sets there do not flow back).
    """
    return await asyncio.wrap_future(submit_to_thread(func, *args, **kwargs))


def run_async_from_thread(func: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
    """From code running under `run_sync`, run `await func(...)` on the event loop.

    Blocks this worker thread until the coroutine finishes and returns its result (or
    raises its exception). The coroutine sees this thread's context variables (a copy).
    If the loop is shutting down the coroutine may be cancelled:
    `concurrent.futures.CancelledError` is raised here then.
    """
    loop: asyncio.AbstractEventLoop | None = getattr(_worker, "loop", None)
    if loop is None:
        raise RuntimeError(
            "run_async_from_thread() must be called from a run_sync() thread "
            "(a sync handler, a WSGI app, or code started with run_sync/submit_to_thread)"
        )
    if loop.is_closed():
        raise RuntimeError("run_async_from_thread(): the event loop is closed")

    async def runner() -> T:
        return await func(*args, **kwargs)

    return asyncio.run_coroutine_threadsafe(runner(), loop).result()


def async_to_sync(func: Callable[P, Awaitable[T]]) -> Callable[P, T]:
    """Wrap an async function so that sync code in a worker thread can call it directly.

    `fetch = async_to_sync(client.get)` in a sync handler, then `fetch(url)`: each call
    runs on the event loop through `run_async_from_thread`.
    """

    @functools.wraps(func)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        return run_async_from_thread(func, *args, **kwargs)

    return call


_STOP = object()


def _next_or_stop(iterator: Iterator[T]) -> T | object:
    # StopIteration cannot cross a Future boundary, so it becomes a sentinel.
    try:
        return next(iterator)
    except StopIteration:
        return _STOP


async def iterate_in_threadpool(iterable: Iterable[T]) -> AsyncIterator[T]:
    """Iterate a blocking iterable, one `next()` per thread-pool call."""
    iterator = iter(iterable)
    while True:
        item = await run_sync(_next_or_stop, iterator)
        if item is _STOP:
            return
        yield item  # type: ignore[misc]


def is_async_callable(obj: Any) -> bool:
    """Whether calling `obj` returns an awaitable (looks through functools.partial)."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    return inspect.iscoroutinefunction(obj) or (
        callable(obj) and inspect.iscoroutinefunction(getattr(obj, "__call__", None))  # noqa: B004
    )
