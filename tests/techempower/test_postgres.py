"""The throwaway PostgreSQL (examples/techempower/postgres.py): the TFB tables as the rules
describe them, an unprivileged server when we are root, and nothing left once it stops.

Run: .venv/bin/pytest tests/techempower -q   (needs the Debian postgresql package)
"""

from __future__ import annotations

import asyncio
import os
import pwd
from pathlib import Path
from typing import Any

import pytest

from examples.techempower import postgres


async def _fetch(database_url: str, query: str) -> list[tuple[Any, ...]]:
    import asyncpg

    connection = await asyncpg.connect(database_url)
    try:
        return [tuple(row) for row in await connection.fetch(query)]
    finally:
        await connection.close()


def fetch(database_url: str, query: str) -> list[tuple[Any, ...]]:
    return asyncio.run(_fetch(database_url, query))


def status_field(pid: int, name: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].split()[0]
    raise AssertionError(f"no {name} in /proc/{pid}/status")


async def _backend(database_url: str) -> tuple[int, int, str]:
    import asyncpg

    connection = await asyncpg.connect(database_url)
    try:
        pid, directory = await connection.fetchrow(
            "SELECT pg_backend_pid(), current_setting('data_directory')")
        # read while connected: the backend process ends with the connection
        return int(status_field(pid, "Uid")), int(status_field(pid, "PPid")), directory
    finally:
        await connection.close()


def backend(database_url: str) -> tuple[int, int, str]:
    """(uid, parent PID, data directory) of the server process serving a connection."""
    return asyncio.run(_backend(database_url))


def start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[19]
    except FileNotFoundError:
        return None


def test_the_tables_are_filled_as_tfb_asks(database_url: str) -> None:
    [(rows, low, high, ids)] = fetch(
        database_url, "SELECT count(*), min(randomnumber), max(randomnumber), "
                      "count(DISTINCT id) FROM world")
    assert rows == ids == 10_000
    assert low >= 1 and high <= 10_000
    fortunes = dict(fetch(database_url, "SELECT id, message FROM fortune"))
    assert len(fortunes) == 12
    assert fortunes[11] == '<script>alert("This should not be displayed in a browser alert box.");</script>'
    assert fortunes[12] == "フレームワークのベンチマーク"


ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0,
                               reason="only root has to hand PostgreSQL to another user")


@ROOT_ONLY
def test_as_root_the_server_runs_unprivileged(database_url: str) -> None:
    uid, _, _ = backend(database_url)
    assert uid == pwd.getpwnam("postgres").pw_uid


@ROOT_ONLY
def test_without_a_postgres_user_it_runs_as_nobody(database_url: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # database_url: the package's database started (or skipped) first, PostgreSQL is here
    monkeypatch.setattr(postgres, "ACCOUNTS", ("nobody",))
    with postgres.running() as url:
        uid, _, _ = backend(url)
        assert uid == pwd.getpwnam("nobody").pw_uid
        assert fetch(url, "SELECT count(*) FROM fortune") == [(12,)]


def test_stopping_it_ends_the_server_and_removes_its_files(database_url: str) -> None:
    with postgres.running() as url:
        _, postmaster, directory = backend(url)
        started = start_time(postmaster)
        assert started is not None and Path(directory).is_dir()
    # gone, or its PID reused by another process (a different start time)
    assert start_time(postmaster) != started
    assert not Path(directory).exists()
