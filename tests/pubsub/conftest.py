"""Fixtures for the pub/sub tests: a real redis-server per test, on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pubsub.support import RedisServer, redis_server
from tests.support.services import free_port, require_binary


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test alone (skips, or fails in CI, when it is not installed)."""
    binary = require_binary("redis-server")
    with redis_server(binary, free_port(), tmp_path) as server:
        yield server


@pytest.fixture(params=["memory", "redis"])
def bus_url(request: pytest.FixtureRequest) -> str:
    """The URL of each kind of bus: memory://, and redis:// on a server of this test."""
    if request.param == "memory":
        return "memory://"
    server: RedisServer = request.getfixturevalue("redis")
    return server.url
