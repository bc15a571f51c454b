"""Fixtures for the framework tests: the core app served by real servers."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.servers import ServerProcess, run_server

SERVER_KINDS = ("uvicorn", "dartle")


@pytest.fixture(scope="module", params=SERVER_KINDS)
def core_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """tests.web.apps.core:app on a real server (once per module and server kind)."""
    with run_server("tests.web.apps.core:app", kind=request.param) as server:
        yield server


@pytest.fixture
def core_http(core_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=core_server.url, timeout=10) as client:
        yield client
