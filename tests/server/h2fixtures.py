"""Fixtures for the HTTP/2 tests (import them into a test module).

Every test talks to a real dartle process (tests/server/h2_app.py: the recorder plus the
HTTP/2 extras) on both event loops, through the raw h2 client of h2client.py or through
real clients (httpx, curl, nghttp, h2load).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.server.conftest import LOOPS, SERVER_KIND, Harness, serve
from tests.server.h2client import H2Client

H2_APP = "tests.server.h2_app:app"

dartle_only = pytest.mark.skipif(SERVER_KIND != "dartle", reason="HTTP/2 is a dartle feature here")


class H2Harness(Harness):
    """A server plus raw HTTP/2 clients that are closed after the test."""

    def __init__(self, process: Any) -> None:
        super().__init__(process.process if isinstance(process, Harness) else process)
        self.clients: list[H2Client] = []

    def h2(self, **options: Any) -> H2Client:
        client = H2Client(self.host, self.port, **options)
        self.clients.append(client)
        return client

    def close_clients(self) -> None:
        for client in self.clients:
            client.close()
        self.clients.clear()


@contextlib.contextmanager
def serve_h2(*flags: str, target: str = H2_APP) -> Iterator[H2Harness]:
    with serve(*flags, target=target) as harness:
        h2 = H2Harness(harness)
        try:
            yield h2
        finally:
            h2.close_clients()
            h2.close()


@pytest.fixture(scope="module", params=LOOPS)
def h2_shared(request: pytest.FixtureRequest) -> Iterator[H2Harness]:
    with serve_h2("--loop", request.param, "--lifespan", "on") as harness:
        yield harness


@pytest.fixture
def h2_server(h2_shared: H2Harness) -> Iterator[H2Harness]:
    """The module's server (one per loop); the app must have seen no ASGI violation."""
    yield h2_shared
    h2_shared.close_clients()
    h2_shared.process.read_log()
    violations = h2_shared.violations()
    before, h2_shared.violations_checked = h2_shared.violations_checked, len(violations)
    assert violations[before:] == [], "the app saw ASGI spec violations"


@pytest.fixture
def start_h2() -> Iterator[Callable[..., H2Harness]]:
    """Start servers with extra flags: `start_h2("--loop", loop, "--h2-max-concurrent-streams", "2")`."""
    with contextlib.ExitStack() as stack:

        def start(*flags: str, target: str = H2_APP) -> H2Harness:
            return stack.enter_context(serve_h2(*flags, target=target))

        yield start

