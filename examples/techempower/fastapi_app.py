"""The TechEmpower test types in FastAPI, to compare with the dartle version (`app.py`).

    TFB_DATABASE_URL=... uvicorn examples.techempower.fastapi_app:app

The same routes, written the same way: typed query parameters, explicit responses, and
the database work, the query-count rule and the template of `database.py`. No
`from __future__ import annotations`: FastAPI reads the annotations at registration.
"""

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse

from examples.techempower.database import Database, query_count, render_fortunes

db = Database()


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await db.connect()
    yield
    await db.close()


app = FastAPI(lifespan=lifespan, title="TechEmpower test types", docs_url=None, redoc_url=None)


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
