"""The typed endpoint of the framework-typed scenario: its models.

Every framework's version of the endpoint (`dartle_web`, `fastapi_web`) is written the
same way: a path parameter, two query parameters (one constrained), a JSON body model
and a response model:

    POST /items/{item_id}?q=hello&limit=5   {"name": ..., "price": ..., "tags": [...]}
    -> 200 {"id": ..., "name": ..., "price": ..., "tags": [...], "q": ..., "limit": ...}

The request the benchmark sends and the answer it expects are in benchmarks/scenarios.py.
"""

from pydantic import BaseModel


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


class ItemOut(BaseModel):
    id: int
    name: str
    price: float
    tags: list[str]
    q: str | None
    limit: int
