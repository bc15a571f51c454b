"""A typed CRUD API: pydantic models in, pydantic models out, documented at /docs.

The store lives in memory, one per worker process, and is created by an app-scoped
dependency when the app starts: each handler declares it needs it, and tests can swap it
(`app.dependency_overrides[get_store] = ...`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from pydantic import BaseModel, Field

from dartle.web import App, Depends, HTTPException, Query, Router


class ItemIn(BaseModel):
    """What a client sends to create or replace an item."""

    name: str = Field(min_length=1, max_length=100, examples=["lamp"])
    price: float = Field(gt=0, description="In euros", examples=[19.5])
    tags: list[str] = Field(default=[], max_length=10)


class ItemPatch(BaseModel):
    """A partial update: only the fields given change."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    price: float | None = Field(default=None, gt=0)
    tags: list[str] | None = Field(default=None, max_length=10)


class Item(ItemIn):
    """An item as stored, with the id the server gave it."""

    id: int


class NotFound(BaseModel):
    detail: str


class Store:
    """Items by id; ids are never reused."""

    def __init__(self) -> None:
        self.items: dict[int, Item] = {}
        self.last_id = 0

    def add(self, data: ItemIn) -> Item:
        self.last_id += 1
        item = Item(id=self.last_id, **data.model_dump())
        self.items[item.id] = item
        return item


async def get_store(app: App) -> AsyncIterator[Store]:
    """App-scoped: one store per app, created at startup with two items in it."""
    store = Store()
    store.add(ItemIn(name="teapot", price=25.0, tags=["kitchen"]))
    store.add(ItemIn(name="desk lamp", price=19.5, tags=["office", "light"]))
    yield store


StoreDep = Annotated[Store, Depends(get_store, scope="app")]


def existing_item(item_id: int, store: StoreDep) -> Item:
    """The item named in the path, or a 404 (a dependency several routes share)."""
    item = store.items.get(item_id)
    if item is None:
        raise HTTPException(404, f"no item with id {item_id}")
    return item


ItemDep = Annotated[Item, Depends(existing_item)]
MISSING = {404: {"model": NotFound, "description": "No item with this id"}}

router = Router(prefix="/items", tags=["items"])


@router.get("")
async def list_items(
    store: StoreDep,
    tag: Annotated[str | None, Query(description="Only items with this tag")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> list[Item]:
    """Every item, oldest first."""
    items = [item for item in store.items.values() if tag is None or tag in item.tags]
    return items[:limit]


@router.post("", status_code=201)
async def create_item(data: ItemIn, store: StoreDep) -> Item:
    """Add an item; the answer carries its id."""
    return store.add(data)


@router.get("/{item_id}", responses=MISSING)
async def read_item(item: ItemDep) -> Item:
    """One item."""
    return item


@router.put("/{item_id}", responses=MISSING)
async def replace_item(item: ItemDep, data: ItemIn, store: StoreDep) -> Item:
    """Replace every field of an item."""
    new = Item(id=item.id, **data.model_dump())
    store.items[item.id] = new
    return new


@router.patch("/{item_id}", responses=MISSING)
async def update_item(item: ItemDep, patch: ItemPatch, store: StoreDep) -> Item:
    """Change the fields given, keep the others."""
    new = item.model_copy(update=patch.model_dump(exclude_unset=True))
    store.items[item.id] = new
    return new


@router.delete("/{item_id}", status_code=204, responses=MISSING)
async def delete_item(item: ItemDep, store: StoreDep) -> None:
    """Remove an item."""
    del store.items[item.id]
