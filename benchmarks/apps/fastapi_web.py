"""The framework scenarios' endpoints in FastAPI (`benchmarks.apps.fastapi_web:app`).

Written as FastAPI's documentation shows: plaintext and json without a return
annotation (one would make FastAPI validate the value against it as a response model);
no `from __future__ import annotations`, FastAPI reads the annotations at registration.
"""

from typing import Annotated, Any

from fastapi import FastAPI, Query
from fastapi.responses import PlainTextResponse

from benchmarks.apps.typed import Item, ItemOut

app = FastAPI(docs_url=None, redoc_url=None)


@app.get("/plaintext", response_class=PlainTextResponse)
async def plaintext():  # type: ignore[no-untyped-def]
    return "Hello, world!"


@app.get("/json")
async def json():  # type: ignore[no-untyped-def]
    return {"message": "Hello, world!"}


@app.post("/items/{item_id}", response_model=ItemOut)
async def create_item(
    item_id: int,
    item: Item,
    q: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> Any:
    return ItemOut(id=item_id, name=item.name, price=item.price, tags=item.tags, q=q, limit=limit)
