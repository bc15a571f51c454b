"""Fixtures for the bridge tests: WSGI apps behind real dartle (and uvicorn) servers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.servers import ServerProcess, run_server

WSGI_APPS = "tests.asgi.apps.wsgi_apps"


class Bridge:
    """A running server with the WSGI test app, and its /ctl/* endpoints."""

    def __init__(self, process: ServerProcess) -> None:
        self.process = process
        self.url = process.url
        self.host = process.host
        self.port = process.port
        self.http = httpx.Client(base_url=self.url, timeout=30)
        # control requests on fresh connections of their own
        self._ctl = httpx.Client(base_url=self.url, timeout=40,
                                 limits=httpx.Limits(max_keepalive_connections=0))

    def ctl(self, name: str, **params: Any) -> httpx.Response:
        return self._ctl.get(f"/ctl/{name}", params=params)

    def wait(self, rid: str, until: str, timeout: float = 20) -> dict[str, Any]:
        response = self.ctl("wait", rid=rid, until=until, timeout=timeout)
        record = dict(response.json())
        assert response.status_code == 200, f"the WSGI app never reached {until!r}: {record}"
        return record

    def info(self, rid: str) -> dict[str, Any]:
        return dict(self.ctl("info", rid=rid).json())

    def log(self) -> str:
        return self.process.read_log(0.2).decode(errors="replace")

    def close(self) -> None:
        self.http.close()
        self._ctl.close()


def new_rid() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture(scope="module")
def bridge() -> Iterator[Bridge]:
    """The WSGI test app on dartle, checked by --strict-asgi all along."""
    with run_server(f"{WSGI_APPS}:app", "--strict-asgi") as process:
        harness = Bridge(process)
        yield harness
        harness.close()
