"""The TechEmpower test types in the dartle framework.

    TFB_DATABASE_URL=postgresql://postgres@127.0.0.1:PORT/hello_world \
        dartle run examples.techempower.app:app

/json, /plaintext, /db, /queries?queries=N, /updates?queries=N, /fortunes and
/cached-worlds?count=N; the rules each follows are in `database.py`, which the FastAPI
version (`fastapi_app.py`) shares. `python -m examples.techempower.postgres` starts a
database to point it at.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from dartle.web import App, HTMLResponse, JSONResponse, PlainTextResponse
from examples.techempower.database import Database, query_count, render_fortunes

db = Database()


@contextlib.asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[None]:
    await db.connect()
    yield
    await db.close()


app = App(lifespan=lifespan, title="TechEmpower test types", docs_url=None, redoc_url=None)


@app.get("/json")
async def json_serialization() -> JSONResponse:
    return JSONResponse({"message": "Hello, World!"})


@app.get("/plaintext")
async def plaintext() -> PlainTextResponse:
    return PlainTextResponse("Hello, World!")


@app.get("/db")
async def single_query() -> JSONResponse:
    return JSONResponse(await db.world())


@app.get("/queries")
async def multiple_queries(queries: str | None = None) -> JSONResponse:
    return JSONResponse(await db.worlds(query_count(queries)))


@app.get("/updates")
async def updates(queries: str | None = None) -> JSONResponse:
    return JSONResponse(await db.update(query_count(queries)))


@app.get("/fortunes")
async def fortunes() -> HTMLResponse:
    return HTMLResponse(render_fortunes(await db.fortunes()))


@app.get("/cached-worlds")
async def cached_worlds(count: str | None = None) -> JSONResponse:
    return JSONResponse(db.cached_worlds(query_count(count)))
