"""The showcase app `make demo` serves: the dartle framework on the dartle server.

    dartle run examples.demo:app     # then open http://127.0.0.1:8000/

One app shows both halves: a typed CRUD API with its /docs (examples/showcase/items.py),
a streamed response and a server-sent events clock (showcase/live.py), the WebSocket
chat of examples/chat.py at /chat/, and a Flask app mounted through the WSGI bridge at
/flask/ (showcase/legacy.py). Right after the server's "running on" line, the log
lists the pages' URLs.

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


class PageList(logging.Handler):
    """Logs every page's URL right after the server says where it runs.

    The app cannot know its address before that line (the port may be 0, or come from a
    flag, a variable or a file), so it waits for it: dartle's line, or uvicorn's.
    """

    PREFIXES = ("dartle running on ", "Uvicorn running on ")

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if not message.startswith(self.PREFIXES) or "://" not in message:
            return
        base = message.split(" ")[3].rstrip("/")
        for name in ("dartle", "uvicorn.error"):
            logging.getLogger(name).removeHandler(self)
        width = max(len(path) for path, _ in home.PAGES) + len(base)
        log.info("showcase: open these pages")
        for path, text in home.PAGES:
            log.info("  %s  %s", (base + path).ljust(width), text)
        log.info("  (chat messages go through %s)", chat.broadcast.description)


@asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[None]:
    # Included routes have no lifespan of their own: the chat's bus is connected here.
    async with chat.broadcast:
        pages = PageList()
        # after the handler that prints the line itself, so the list follows it
        for name in ("dartle", "uvicorn.error"):
            logging.getLogger(name).addHandler(pages)
        yield
        for name in ("dartle", "uvicorn.error"):
            logging.getLogger(name).removeHandler(pages)


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
