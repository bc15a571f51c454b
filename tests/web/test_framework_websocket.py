"""The framework's WebSockets over real sockets, on uvicorn and on the dartle server."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.support.servers import ServerProcess


def ws_url(server: ServerProcess, path: str) -> str:
    return server.url.replace("http://", "ws://") + path


def open_ws(server: ServerProcess, path: str, **kwargs: object) -> ClientConnection:
    return connect(ws_url(server, path), open_timeout=10, proxy=None, **kwargs)  # type: ignore[arg-type]


def close_code(ws: ClientConnection) -> tuple[int | None, str | None]:
    with pytest.raises(ConnectionClosed) as info:
        ws.recv(timeout=10)
    rcvd = info.value.rcvd
    return (rcvd.code, rcvd.reason) if rcvd else (None, None)


def test_echo_text_bytes_subprotocol_and_headers(core_server: ServerProcess) -> None:
    with open_ws(core_server, "/ws/echo", subprotocols=["chat.v2", "chat.v1"]) as ws:
        assert ws.subprotocol == "chat.v2"
        assert ws.response.headers["x-ws"] == "hello"
        ws.send("hi")
        assert ws.recv(timeout=10) == "echo:hi"
        ws.send(b"\x00\x01")
        assert ws.recv(timeout=10) == b"echo:\x00\x01"
        ws.send("close")
        assert close_code(ws) == (4000, "asked to close")


def test_json_roundtrip_and_invalid_json_closes_1007(core_server: ServerProcess) -> None:
    with open_ws(core_server, "/ws/json") as ws:
        ws.send(json.dumps({"a": [1, 2]}))
        assert json.loads(ws.recv(timeout=10)) == {"got": {"a": [1, 2]}}
        ws.send("{not json")
        code, reason = close_code(ws)
        assert code == 1007
        assert reason is not None and reason.startswith("invalid JSON")


def test_binary_where_text_expected_closes_1003(core_server: ServerProcess) -> None:
    with open_ws(core_server, "/ws/text-only") as ws:
        ws.send("fine")
        assert ws.recv(timeout=10) == "fine"
        ws.send(b"\xff")
        assert close_code(ws) == (1003, "expected a text message, got binary")


def test_websocket_exception_closes_with_its_code(core_server: ServerProcess) -> None:
    with open_ws(core_server, "/ws/policy") as ws:
        assert close_code(ws) == (1008, "policy says no")


def test_unhandled_error_after_accept_closes_1011(core_server: ServerProcess) -> None:
    with open_ws(core_server, "/ws/crash") as ws:
        assert close_code(ws)[0] == 1011


def test_path_params_and_lifespan_state(core_server: ServerProcess) -> None:
    with open_ws(core_server, "/ws/params/lobby") as ws:
        assert json.loads(ws.recv(timeout=10)) == {"room": "lobby", "db": "connected"}


def _supports_denial(server: ServerProcess) -> bool:
    with open_ws(server, "/ws/extensions") as ws:
        return "websocket.http.response" in json.loads(ws.recv(timeout=10))


def test_denial_response(core_server: ServerProcess) -> None:
    supported = _supports_denial(core_server)
    with pytest.raises(InvalidStatus) as info:
        open_ws(core_server, "/ws/deny")
    response = info.value.response
    if supported:
        assert response.status_code == 401
        assert response.headers["x-denied"] == "1"
        assert json.loads(response.body) == {"detail": "no entry"}
    else:
        assert response.status_code == 403


def test_unknown_websocket_path_is_refused(core_server: ServerProcess) -> None:
    supported = _supports_denial(core_server)
    with pytest.raises(InvalidStatus) as info:
        open_ws(core_server, "/ws/nowhere")
    assert info.value.response.status_code == (404 if supported else 403)
