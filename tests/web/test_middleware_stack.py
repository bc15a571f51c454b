"""All middleware stacked: streaming stays streaming, context and background tasks survive."""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.servers import ServerProcess, run_server


@pytest.fixture(scope="module", params=["uvicorn", "dartle"])
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with run_server("tests.web.apps.mw_stack:app", kind=request.param) as running:
        yield running


def test_context_and_background_go_through_the_stack(server: ServerProcess) -> None:
    key = uuid.uuid4().hex
    with httpx.Client(base_url=server.url, timeout=10) as client:
        with client.stream(
            "GET", f"/work?id={key}", headers={"origin": "https://good.example", "accept-encoding": "gzip"}
        ) as response:
            raw = b"".join(response.iter_raw())
        assert response.status_code == 200
        assert response.headers["content-encoding"] == "gzip"
        assert response.headers["access-control-allow-origin"] == "https://good.example"
        assert "content-length" not in response.headers  # streamed, so no length up front
        assert gzip.decompress(raw) == b"chunk one " * 100 + b"chunk two " * 100
        record = client.get(f"/results?id={key}").json()
    assert record == {
        "outer_seen_by_app": "outer",
        "session_type": "dict",
        "background_saw": "inner-" + key,
        "app_var_seen_after": "inner-" + key,
    }
