"""The showcase app `make demo` serves: the dartle framework on the dartle server.

    dartle run examples.demo:app     # then open http://127.0.0.1:8000/

One app shows both halves: a typed CRUD API with its /docs (examples/showcase/items.py),
a streamed response and a server-sent events clock (showcase/live.py), the WebSocket
chat of examples/chat.py at /chat/, and a Flask app mounted through the WSGI bridge at
/flask/ (showcase/legacy.py). At startup the log lists the pages.

The items live in memory, one store per process. The chat's messages go through
memory:// (this process only) unless CHAT_REDIS_URL names a Redis, which lets several
workers share the rooms:

    CHAT_REDIS_URL=redis://127.0.0.1:6379/0 dartle run examples.demo:app --workers 2
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from dartle.asgi.wsgi import WSGIMiddleware
from dartle.web import App
from examples import chat
from examples.showcase import home, items, live
from examples.showcase.legacy import flask_app

log = logging.getLogger("dartle.error")


@asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[None]:
    # Included routes have no lifespan of their own: the chat's bus is connected here.
    async with chat.broadcast:
        width = max(len(path) for path, _ in home.PAGES)
        log.info("showcase: these pages, on the address dartle serves (printed below):")
        for path, text in home.PAGES:
            log.info("  %s  %s", path.ljust(width), text)
        log.info("  (chat messages go through %s)", chat.broadcast.description)
        yield


app = App(
    lifespan=lifespan,
    title="dartle showcase",
    version="1.0",
    description="A typed CRUD API, served with a stream, an SSE clock, a chat and a Flask app.",
    openapi_tags=[
        {"name": "items", "description": "A typed CRUD API over an in-memory store"},
        {"name": "live", "description": "Responses that keep going"},
    ],
)
app.include_router(home.router)
app.include_router(items.router)
app.include_router(live.router)
app.include_router(chat.router)
app.mount("/flask", WSGIMiddleware(flask_app))
