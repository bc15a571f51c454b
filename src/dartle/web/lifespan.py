"""The ASGI lifespan protocol, driven by an async context manager.

`lifespan=` is a factory taking the app and returning an async context manager; what
it yields (a dict, a TypedDict, or None) is merged into the lifespan `state`, which
the server copies into every request's scope (`request.state`). `on_startup` and
`on_shutdown` callables run around it, for code written in that older style.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from dartle.asgi.concurrency import is_async_callable, run_sync
from dartle.web.types import Receive, Scope, Send

__all__ = ["Lifespan", "LifespanHooks", "run_lifespan"]

Lifespan = Callable[[Any], contextlib.AbstractAsyncContextManager[Mapping[str, Any] | None]]
Hook = Callable[[], Any]


class LifespanHooks:
    """What runs at startup and shutdown: a lifespan factory and/or hook lists."""

    def __init__(
        self,
        lifespan: Lifespan | None = None,
        on_startup: Sequence[Hook] | None = None,
        on_shutdown: Sequence[Hook] | None = None,
    ) -> None:
        self.lifespan = lifespan
        self.on_startup = list(on_startup or [])
        self.on_shutdown = list(on_shutdown or [])

    @contextlib.asynccontextmanager
    async def run(self, app: Any) -> AsyncIterator[Mapping[str, Any] | None]:
        """Startup hooks, enter the lifespan, yield its state; the reverse on exit."""
        for hook in self.on_startup:
            await _call(hook)
        try:
            if self.lifespan is None:
                yield None
            else:
                async with self.lifespan(app) as state:
                    yield state
        finally:
            for hook in self.on_shutdown:
                await _call(hook)


async def _call(hook: Hook) -> None:
    if is_async_callable(hook):
        await hook()
    else:
        await run_sync(hook)


async def run_lifespan(hooks: LifespanHooks, app: Any, scope: Scope, receive: Receive, send: Send) -> None:
    """Speak the lifespan protocol for `app` until the server's shutdown is complete."""
    started = False
    message = await receive()
    if message["type"] != "lifespan.startup":
        return
    try:
        async with hooks.run(app) as state:
            if state is not None:
                if not isinstance(state, Mapping):
                    raise TypeError(
                        f"the lifespan must yield a mapping (dict, TypedDict) or None, "
                        f"not {type(state).__name__}"
                    )
                if "state" not in scope:
                    raise RuntimeError(
                        "the lifespan yielded state but the server does not support "
                        "lifespan state (no 'state' in the lifespan scope)"
                    )
                scope["state"].update(state)
            await send({"type": "lifespan.startup.complete"})
            started = True
            message = await receive()
            # Anything but lifespan.shutdown means the server is going away too.
    except Exception as exc:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        if started:
            await send({"type": "lifespan.shutdown.failed", "message": text})
        else:
            await send({"type": "lifespan.startup.failed", "message": text})
        raise
    await send({"type": "lifespan.shutdown.complete"})
