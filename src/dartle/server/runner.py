"""Run a connection's app calls eagerly, inside one long-lived task per connection.

Creating an asyncio Task per request costs a Task object, a WeakSet registration and a
loop iteration before the app even starts; with pipelined requests it costs one loop
iteration per request. Most requests never suspend (a hello-world or a cached answer), so
`Runner.run` starts the app's coroutine at once, in a fresh `contextvars` context, while
the connection's worker task is "current" — `asyncio.current_task()` and libraries built
on it (anyio cancel scopes, asyncio.timeout) see a real task. If the app suspends, the
worker task goes on driving that coroutine to the end, step by step, each step in the
request's own context so context variables never leak between requests.

An app may also go on after its response is complete (background work). A request that
arrives meanwhile does not wait for it: it gets a task of its own.

Starting at once is only fair while nothing else is in flight. When other app calls are
suspended, the input just read may have woken some of them (their wakeups wait in the
loop's ready queue), and a request started at once would run first and take what they
were woken for: a pooled connection handed to a waiter, which then queues again. So
then the request's first step waits its turn in the ready queue, behind them, as a task
of its own would (tests/server/test_fairness.py).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from dartle.asgi.types import ASGIApp
from dartle.server.cycle import DONE

if TYPE_CHECKING:
    from dartle.server.cycle import Cycle
    from dartle.server.serve import ServerState

logger = logging.getLogger("dartle.error")

_enter_task = asyncio.tasks._enter_task
_leave_task = asyncio.tasks._leave_task
_current_task: Callable[[asyncio.AbstractEventLoop], asyncio.Task[Any] | None]
if sys.version_info >= (3, 12):
    _current_task = asyncio.current_task  # implemented in C
else:
    # A Python function before 3.12, reading the dict _enter_task fills: read it directly.
    _current_task = asyncio.tasks._current_tasks.get  # type: ignore[attr-defined]

# An app call as the runner drives it: the iterator behind `await app(...)`. Stepping it
# with `next(steps, _FINISHED)` (C) reports the end as a value, where `coro.send` would
# raise StopIteration for Python code to catch: that costs more than the rest of a step.
Steps = Generator[Any, None, None]


class Runner:
    """One per connection: starts app calls eagerly, finishes them in its task."""

    __slots__ = (
        "app", "closed", "current", "loop", "queued", "spawned", "state", "stepping", "task", "turn", "wake",
    )

    def __init__(self, state: ServerState) -> None:
        self.loop: asyncio.AbstractEventLoop = state.loop
        self.app: ASGIApp = state.app
        self.state = state  # its `tasks`: app calls in flight in this process, this one included
        self.turn = False  # a deferred request's turn has come: start it now
        self.task: asyncio.Task[None] | None = None
        self.wake: asyncio.Future[None] | None = None
        # the app call the worker is driving: cycle, coroutine, its context, what it awaits
        self.current: tuple[Cycle, Steps, contextvars.Context, Any] | None = None
        self.queued: Cycle | None = None
        self.stepping = False
        self.closed = False
        self.spawned: set[asyncio.Task[None]] = set()

    def run(self, cycle: Cycle) -> None:
        """Run the app for `cycle`: here and now, in the worker task, or in a task of its own."""
        if self.stepping:
            # called from inside a step (a response completed and the next pipelined
            # request is due): take it once the current step is over, not re-entrantly
            self.queued = cycle
            return
        loop = self.loop
        if self.current is not None or _current_task(loop) is not None:
            self._spawn(cycle)  # the worker is busy, or we are inside another task
            return
        if self.state.tasks > 1 and not self.turn:
            loop.call_soon(self._take_turn, cycle)  # others are in flight: queue behind them
            return
        task = self.task
        if task is None or task.done():
            task = self.task = loop.create_task(self._work())
        while True:
            ctx = contextvars.copy_context()
            self.stepping = True
            _enter_task(loop, task)
            try:
                steps = self.app(cycle.scope, cycle.receive, cycle.send).__await__()
                awaited = ctx.run(next, steps, _FINISHED)
                if awaited is _FINISHED:
                    if cycle.state == DONE:
                        cycle.framing.app_done(cycle)  # the usual end, without the checks
                    else:
                        cycle.app_finished(None)
            except BaseException as exc:  # SystemExit too: it ends this request only
                awaited = _FINISHED
                cycle.app_finished(exc)
            finally:
                _leave_task(loop, task)
                self.stepping = False
            queued = self.queued
            if awaited is not _FINISHED:
                self.current = (cycle, steps, ctx, awaited)
                wake = self.wake
                if wake is not None:
                    self.wake = None
                    wake.set_result(None)
                if queued is not None:
                    self.queued = None
                    self._spawn(queued)
                return
            if queued is None:
                return
            self.queued = None
            cycle = queued  # the next pipelined request, whose turn came in that step

    def _take_turn(self, cycle: Cycle) -> None:
        self.turn = True
        try:
            self.run(cycle)
        finally:
            self.turn = False

    def _spawn(self, cycle: Cycle) -> None:
        task = contextvars.copy_context().run(self.loop.create_task, cycle.run(self.app))
        self.spawned.add(task)
        task.add_done_callback(self.spawned.discard)

    def close(self) -> None:
        """The connection is gone: let the worker end once it has nothing to drive."""
        self.closed = True
        wake = self.wake
        if wake is not None:
            self.wake = None
            wake.set_result(None)

    async def _work(self) -> None:
        cancelled = False
        while True:
            try:
                current = self.current
                if current is None:
                    if self.closed:
                        return
                    wake = self.wake = self.loop.create_future()
                    await wake
                    continue
            except asyncio.CancelledError:
                # Asked of the worker while it was not yet driving the app that owns it
                # now (a cancel scope or timeout in the app's eager first step): that app
                # gets it. An idle worker's cancellation is the worker's own.
                if self.current is None:
                    raise
                cancelled = True
                continue
            cycle, steps, ctx, awaited = current
            if cancelled:
                cancelled = False
                awaited = _CANCELLED
            try:
                await _Resume(self, steps, ctx, awaited)
            except BaseException as exc:
                self.current = None
                cycle.app_finished(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise  # the worker itself was cancelled (shutdown)
            else:
                self.current = None
                cycle.app_finished(None)
            queued, self.queued = self.queued, None
            if queued is not None:
                # the app ended in the step that completed its response: the next
                # pipelined request runs right here, without another loop iteration
                try:
                    steps = self.app(queued.scope, queued.receive, queued.send).__await__()
                except BaseException as exc:  # not an awaitable: an app bug, this request's
                    queued.app_finished(exc)
                else:
                    self.current = (queued, steps, contextvars.copy_context(), _START)


class _Marker:
    pass


_FINISHED = _Marker()
_START = _Marker()  # an app call not started yet: step first, nothing to wait for
_CANCELLED = _Marker()  # a cancellation to throw into the app call before anything else


class _Resume:
    """Awaitable that drives an app call to its end, each step in the request's context."""

    __slots__ = ("awaited", "ctx", "runner", "steps")

    def __init__(self, runner: Runner, steps: Steps, ctx: contextvars.Context, awaited: Any) -> None:
        self.runner = runner
        self.steps = steps
        self.ctx = ctx
        self.awaited = awaited

    def __await__(self) -> Generator[Any, None, None]:
        runner, steps, ctx, awaited = self.runner, self.steps, self.ctx, self.awaited
        self.awaited = None
        while True:
            thrown: BaseException | None = None
            if awaited is _CANCELLED:
                thrown = asyncio.CancelledError()
            elif awaited is not _START:
                try:
                    yield awaited
                except BaseException as exc:  # cancellation thrown into the worker task
                    thrown = exc
            runner.stepping = True
            try:
                awaited = ctx.run(steps.send, None) if thrown is None else ctx.run(steps.throw, thrown)
            except StopIteration:
                return
            finally:
                runner.stepping = False
            queued = runner.queued
            if queued is not None:
                # a response completed but its app goes on: the next request must not wait
                runner.queued = None
                runner._spawn(queued)
