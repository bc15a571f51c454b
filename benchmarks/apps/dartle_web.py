"""The framework scenarios' endpoints in the dartle framework (`benchmarks.apps.dartle_web:app`).

Served by the dartle server and by uvicorn, to tell the framework's cost from the
server's. Each endpoint is written the way the framework's documentation shows;
`starlette_web` and `fastapi_web` hold the same endpoints in those frameworks.
"""

from typing import Annotated, Any

from benchmarks.apps.typed import Item, ItemOut
from dartle.web import App, PlainTextResponse, Query, Request

app = App(docs_url=None, redoc_url=None)


@app.get("/plaintext")
async def plaintext(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello, world!")


@app.get("/json")
async def json(request: Request) -> dict:  # type: ignore[type-arg]
    return {"message": "Hello, world!"}


@app.post("/items/{item_id}", response_model=ItemOut)
async def create_item(
    item_id: int,
    item: Item,
    q: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> Any:
    return ItemOut(id=item_id, name=item.name, price=item.price, tags=item.tags, q=q, limit=limit)
