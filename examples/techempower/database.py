"""What the dartle and the FastAPI versions share: each test type's database work, the
query-count rule, and the fortunes page. The apps themselves only route and respond.

The rules (TechEmpower Framework Benchmarks, "test type requirements"):

- /db: one World row, by a random id in 1..10000, as {"id": ..., "randomNumber": ...}.
- /queries?queries=N: N rows, each read by its own query; N is clamped to 1..500, and
  anything that is not an integer (or nothing) counts as 1.
- /updates?queries=N: N rows read one by one, each given a new random number, written
  back (a batch update is allowed), and returned.
- /fortunes: every Fortune row plus one added at request time, sorted by message,
  rendered as an HTML table by a template that escapes them.
- /cached-worlds?count=N: N World rows from an in-memory cache filled at startup.

The database is PostgreSQL through asyncpg (examples/techempower/postgres.py starts a
throwaway one); its address comes from $TFB_DATABASE_URL.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import asyncpg
import jinja2

WORLD_ROWS = 10_000
MAX_QUERIES = 500
ADDITIONAL_FORTUNE = "Additional fortune added at request time."
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/hello_world"
POOL_SIZE = 16  # connections per worker process; $TFB_POOL_SIZE to change

SELECT_WORLD = "SELECT id, randomnumber FROM world WHERE id = $1"
SELECT_ALL_WORLDS = "SELECT id, randomnumber FROM world"
UPDATE_WORLD = "UPDATE world SET randomnumber = $2 WHERE id = $1"
SELECT_FORTUNES = "SELECT id, message FROM fortune"

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent), autoescape=True)
FORTUNES_TEMPLATE = _templates.get_template("fortunes.html")

World = dict[str, int]


def query_count(raw: str | None) -> int:
    """The number of rows asked for: an integer clamped to 1..500; anything else is 1."""
    try:
        count = int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 1
    return min(max(count, 1), MAX_QUERIES)


def render_fortunes(fortunes: list[tuple[int, str]]) -> str:
    return FORTUNES_TEMPLATE.render(fortunes=fortunes)


def _random_id() -> int:
    return random.randint(1, WORLD_ROWS)


class Database:
    """A pool of connections to the hello_world database, and the cached World table."""

    def __init__(self) -> None:
        self._pool: Any = None
        self._cache: dict[int, World] = {}

    async def connect(self, url: str | None = None, size: int | None = None) -> None:
        url = url or os.environ.get("TFB_DATABASE_URL", DEFAULT_URL)
        size = size or int(os.environ.get("TFB_POOL_SIZE", POOL_SIZE))
        self._pool = await asyncpg.create_pool(url, min_size=size, max_size=size)
        rows = await self._pool.fetch(SELECT_ALL_WORLDS)
        self._cache = {row[0]: {"id": row[0], "randomNumber": row[1]} for row in rows}

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    async def world(self) -> World:
        row = await self._pool.fetchrow(SELECT_WORLD, _random_id())
        return {"id": row[0], "randomNumber": row[1]}

    async def worlds(self, count: int) -> list[World]:
        async with self._pool.acquire() as connection:
            statement = await connection.prepare(SELECT_WORLD)
            worlds = []
            for _ in range(count):
                row = await statement.fetchrow(_random_id())
                worlds.append({"id": row[0], "randomNumber": row[1]})
            return worlds

    async def update(self, count: int) -> list[World]:
        # Distinct ids, written in id order: concurrent batches cannot deadlock.
        ids = sorted(random.sample(range(1, WORLD_ROWS + 1), count))
        async with self._pool.acquire() as connection:
            statement = await connection.prepare(SELECT_WORLD)
            worlds = []
            for world_id in ids:
                await statement.fetchval(world_id)  # read each row, as the rules ask
                worlds.append({"id": world_id, "randomNumber": _random_id()})
            await connection.executemany(
                UPDATE_WORLD, [(world["id"], world["randomNumber"]) for world in worlds])
            return worlds

    async def fortunes(self) -> list[tuple[int, str]]:
        rows = await self._pool.fetch(SELECT_FORTUNES)
        fortunes = [(row[0], row[1]) for row in rows]
        fortunes.append((0, ADDITIONAL_FORTUNE))
        fortunes.sort(key=lambda fortune: fortune[1])
        return fortunes

    def cached_worlds(self, count: int) -> list[World]:
        cache = self._cache
        return [cache[_random_id()] for _ in range(count)]
