"""Dependencies: order of setup and teardown, background tasks, caching, errors thrown
into generators, route and router dependencies, app scope, overrides.

Every step is recorded in `events`, which tests read over HTTP (`/events/wait?count=N`
waits for the N-th event: an event, not a sleep). With DARTLE_TYPED_OVERRIDE=1 the
module installs a dependency override, as a test suite would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from typing import Annotated

from dartle.web import App, BackgroundTasks, Depends, Header, HTTPException, Query, Request
from dartle.web.routing import Router

events: list[str] = []
_grew: asyncio.Event | None = None
_release: asyncio.Event | None = None


def record(event: str) -> None:
    events.append(event)
    if _grew is not None:
        _grew.set()


def say(line: str) -> None:
    print(line, flush=True)  # tests read the server's log


@contextlib.asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[dict[str, object]]:
    global _grew, _release
    _grew = asyncio.Event()
    _release = asyncio.Event()
    say("lifespan up")
    yield {"from_lifespan": "yes"}
    say("lifespan down")


# --- app scope ------------------------------------------------------------------------


class Pool:
    created = 0

    def __init__(self, settings: dict[str, str]) -> None:
        Pool.created += 1
        self.settings = settings
        self.open = True


def settings() -> dict[str, str]:
    return {"dsn": "memory://"}


async def pool(
    app: App, conf: Annotated[dict[str, str], Depends(settings, scope="app")]
) -> AsyncIterator[Pool]:
    created = Pool(conf)
    say(f"pool up {app.title}")
    yield created
    created.open = False
    say("pool down")


AppPool = Annotated[Pool, Depends(pool, scope="app")]


app = App(lifespan=lifespan, title="deps")


@app.get("/events")
async def get_events() -> dict[str, list[str]]:
    return {"events": events}


@app.post("/events/clear")
async def clear_events() -> dict[str, int]:
    events.clear()
    return {"cleared": 1}


@app.get("/events/wait")
async def wait_events(count: int) -> dict[str, list[str]]:
    grew = _grew
    assert grew is not None

    async def until() -> None:
        while len(events) < count:
            grew.clear()
            await grew.wait()

    await asyncio.wait_for(until(), 10)
    return {"events": events}


@app.post("/release")
async def release() -> dict[str, bool]:
    assert _release is not None
    _release.set()
    return {"released": True}


# --- order ----------------------------------------------------------------------------


async def outer() -> AsyncIterator[str]:
    record("outer enter")
    yield "outer"
    record("outer exit")


def inner(value: Annotated[str, Depends(outer)]) -> Iterator[str]:
    record("inner enter")  # a sync generator: runs in the thread pool
    yield value + "+inner"
    record("inner exit")


@app.get("/order")
async def order(value: Annotated[str, Depends(inner)], tasks: BackgroundTasks) -> dict[str, str]:
    record("handler")
    tasks.add_task(record, "task")
    return {"value": value}


# --- a background task that asks for a dependency's value -------------------------------


class Session:
    def __init__(self) -> None:
        self.open = True


async def session() -> AsyncIterator[Session]:
    record("session open")
    current = Session()
    yield current
    current.open = False
    record("session closed")


async def other() -> AsyncIterator[str]:
    yield "other"
    record("other closed")


async def use_session(current: Session) -> None:
    await asyncio.sleep(0)
    record(f"task sees session open={current.open}")


@app.get("/handover")
async def handover(
    current: Annotated[Session, Depends(session)],
    unrelated: Annotated[str, Depends(other)],
    tasks: BackgroundTasks,
) -> dict[str, bool]:
    tasks.add_task(use_session, current)
    return {"queued": True}


# --- teardown after the response ----------------------------------------------------------


async def blocked() -> AsyncIterator[str]:
    yield "blocked"
    assert _release is not None
    await _release.wait()
    _release.clear()
    record("blocked exit")


@app.get("/after-response")
async def after_response(value: Annotated[str, Depends(blocked)]) -> dict[str, str]:
    record("after-response handler")
    return {"value": value}


# --- errors reach the generators -------------------------------------------------------


class Conflict(Exception):
    pass


async def transaction() -> AsyncIterator[str]:
    record("begin")
    try:
        yield "tx"
    except Conflict as exc:
        record(f"rollback {exc}")
        raise HTTPException(409, f"conflict: {exc}") from exc
    else:
        record("commit")


@app.post("/transfer")
async def transfer(tx: Annotated[str, Depends(transaction)], amount: int) -> dict[str, int]:
    if amount < 0:
        raise Conflict("negative amount")
    return {"amount": amount}


# --- caching --------------------------------------------------------------------------


def counted() -> int:
    record("counted")
    return len(events)


async def first(n: Annotated[int, Depends(counted)]) -> int:
    return n


async def second(n: Annotated[int, Depends(counted)]) -> int:
    return n


@app.get("/cached")
async def cached(
    a: Annotated[int, Depends(first)],
    b: Annotated[int, Depends(second)],
    fresh: Annotated[int, Depends(counted, use_cache=False)],
) -> dict[str, bool]:
    return {"shared": a == b, "fresh_differs": fresh != a}


# --- dependencies that read the request, classes, route and router dependencies ------------


class Page:
    def __init__(
        self, offset: Annotated[int, Query(ge=0)] = 0, size: Annotated[int, Query(le=50)] = 10
    ) -> None:
        self.offset = offset
        self.size = size


def require_tenant(x_tenant: Annotated[str | None, Header()] = None) -> None:
    if x_tenant is None:
        raise HTTPException(403, "a tenant is required")
    record(f"tenant {x_tenant}")


tenants = Router(prefix="/tenant", dependencies=[Depends(require_tenant)])


@tenants.get("/page")
def page(page: Annotated[Page, Depends()], request: Request) -> dict[str, object]:
    return {"offset": page.offset, "size": page.size, "state": request.state.from_lifespan}


app.include_router(tenants)


@app.get("/guarded", dependencies=[Depends(require_tenant)])
async def guarded() -> str:
    return "in"


# --- app scope and overrides -------------------------------------------------------------


@app.get("/pool")
async def use_pool(p: AppPool) -> dict[str, object]:
    return {"id": id(p), "open": p.open, "created": Pool.created, "dsn": p.settings["dsn"]}


def current_user(x_user: Annotated[str, Header()]) -> str:
    return x_user


def fake_user() -> str:
    return "override"


@app.get("/whoami")
async def whoami(user: Annotated[str, Depends(current_user)]) -> dict[str, str]:
    return {"user": user}


if os.environ.get("DARTLE_TYPED_OVERRIDE") == "1":
    app.dependency_overrides[current_user] = fake_user
