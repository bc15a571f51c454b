"""Typed WebSocket handlers over real sockets: path and query parameters, dependencies,
and a refused handshake when they are invalid."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.support.servers import ServerProcess, run_server


@pytest.fixture(scope="module", params=("uvicorn", "dartle"))
def typed_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with run_server("tests.web.apps.typed_api:app", kind=request.param) as server:
        yield server


def open_ws(server: ServerProcess, path: str, **kwargs: object) -> ClientConnection:
    url = server.url.replace("http://", "ws://") + path
    return connect(url, open_timeout=10, proxy=None, **kwargs)  # type: ignore[arg-type]


def test_typed_parameters_and_dependency(typed_server: ServerProcess) -> None:
    with open_ws(typed_server, "/typed/ws/lobby?times=2", additional_headers={"x-api-key": "k"}) as ws:
        ws.send(json.dumps({"text": "hi"}))
        assert json.loads(ws.recv(timeout=10)) == {"room": "lobby", "text": "hihi", "times": 2}


def test_invalid_parameters_refuse_the_handshake(typed_server: ServerProcess) -> None:
    with pytest.raises(InvalidStatus) as info:
        open_ws(typed_server, "/typed/ws/lobby?times=9", additional_headers={"x-api-key": "k"})
    # Both servers speak the websocket.http.response extension: the errors come along.
    response = info.value.response
    assert response.status_code == 422
    assert json.loads(response.body)["detail"][0]["loc"] == ["query", "times"]


def test_missing_credentials_refuse_the_handshake(typed_server: ServerProcess) -> None:
    with pytest.raises(InvalidStatus) as info:
        open_ws(typed_server, "/typed/ws/lobby")
    assert info.value.response.status_code == 401
    assert info.value.response.headers["www-authenticate"] == "APIKey"
