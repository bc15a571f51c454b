"""Work that runs after the response has been sent."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from dartle.asgi.concurrency import is_async_callable, run_sync

__all__ = ["BackgroundTask", "BackgroundTasks"]


class BackgroundTask:
    """One call, `func(*args, **kwargs)`; sync functions run in the thread pool."""

    __slots__ = ("args", "func", "is_async", "kwargs")

    def __init__(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.is_async = is_async_callable(func)

    async def __call__(self) -> None:
        if self.is_async:
            await self.func(*self.args, **self.kwargs)
        else:
            await run_sync(self.func, *self.args, **self.kwargs)


class BackgroundTasks(BackgroundTask):
    """Several tasks run one after the other, in the order they were added."""

    __slots__ = ("tasks",)

    def __init__(self, tasks: Sequence[BackgroundTask] | None = None) -> None:
        self.tasks = list(tasks) if tasks else []

    def add_task(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Queue `func(*args, **kwargs)` to run after the response."""
        self.tasks.append(BackgroundTask(func, *args, **kwargs))

    async def __call__(self) -> None:
        for task in self.tasks:
            await task()
