"""The http scope, exactly as /work/shared/ASGI-CHECKLIST.md says, under both event loops."""

from __future__ import annotations

import socket
from typing import Any

import httpx

from tests.server.asgi_json import decode
from tests.server.conftest import Harness, dartle_only, new_rid, uvicorn_differs
from tests.server.rawhttp import RawConn, request


def fetch_scope(
    server: Harness, target: str, headers: list[tuple[str, str]] | None = None, version: str = "HTTP/1.1"
) -> tuple[dict[str, Any], RawConn]:
    rid = new_rid()
    conn = server.raw()
    conn.send(request("GET", target, [("X-Rid", rid), *(headers or [])], version=version))
    response = conn.read_response()
    assert response.status == 200, response
    return decode(response.json()), conn


def test_path_raw_path_and_query_string(server: Harness) -> None:
    scope, _ = fetch_scope(server, "/scope/caf%C3%A9%20x%2Fy?a=1&b=%20c&e=%C3%A9")
    assert scope["path"] == "/scope/café x/y"
    assert scope["raw_path"] == b"/scope/caf%C3%A9%20x%2Fy"
    assert scope["query_string"] == b"a=1&b=%20c&e=%C3%A9"


def test_empty_query_string_is_empty_bytes(server: Harness) -> None:
    scope, _ = fetch_scope(server, "/scope/plain")
    assert scope["query_string"] == b""
    assert scope["raw_path"] == b"/scope/plain"


def test_basic_fields(server: Harness) -> None:
    scope, conn = fetch_scope(server, "/scope")
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope.get("root_path", "") == ""
    assert scope["client"] == ["127.0.0.1", conn.local_port]
    assert scope["server"] == ["127.0.0.1", server.port]


def test_http_10_version(server: Harness) -> None:
    scope, _ = fetch_scope(server, "/scope", version="HTTP/1.0")
    assert scope["http_version"] == "1.0"


def test_headers_order_duplicates_and_lowercase(server: Harness) -> None:
    scope, _ = fetch_scope(
        server,
        "/scope",
        [("X-Dup", "1"), ("X-Other", "a, b"), ("X-DUP", "2"), ("Cookie", "a=1"), ("Cookie", "b=2")],
    )
    headers = [tuple(pair) for pair in scope["headers"]]
    interesting = [pair for pair in headers if pair[0] in (b"x-dup", b"x-other", b"cookie")]
    assert interesting == [
        (b"x-dup", b"1"),
        (b"x-other", b"a, b"),
        (b"x-dup", b"2"),
        (b"cookie", b"a=1"),
        (b"cookie", b"b=2"),
    ]
    assert (b"host", b"127.0.0.1") in headers


@uvicorn_differs("keeps trailing whitespace of header values (httptools)")
def test_header_value_whitespace_is_trimmed(server: Harness) -> None:
    # RFC 9110 section 5.5: leading and trailing whitespace is not part of a field value.
    scope, _ = fetch_scope(server, "/scope", [("X-Padded", "  padded value \t")])
    assert [b"x-padded", b"padded value"] in scope["headers"]


def test_absolute_form_target(server: Harness) -> None:
    scope, _ = fetch_scope(server, "http://example.com/scope/abs?q=1")
    assert scope["path"] == "/scope/abs"
    assert scope["query_string"] == b"q=1"


def test_method_is_passed_through(server: Harness) -> None:
    rid = new_rid()
    response = server.http.request("PATCH", "/scope", headers={"x-rid": rid})
    assert response.status_code == 200
    assert response.json()["method"] == "PATCH"


def test_lifespan_state_is_a_shallow_copy(server: Harness) -> None:
    first = server.http.get("/state", headers={"x-rid": new_rid()}).json()
    second = server.http.get("/state", headers={"x-rid": new_rid()}).json()
    assert first["present"] and second["present"]
    assert first["state"]["greeting"] == "hello"
    assert second["state"]["greeting"] == "hello"
    # The first request set state["mutated_by"]; a copy per request means the next can't see it.
    assert "mutated_by" not in first["state"]
    assert "mutated_by" not in second["state"]


@dartle_only
def test_extensions_advertised(server: Harness) -> None:
    scope = server.http.get("/scope", headers={"x-rid": new_rid()}).json()
    extensions = scope["extensions"]
    assert "http.response.trailers" in extensions
    assert "http.response.pathsend" in extensions
    assert "tls" not in extensions, "the tls extension is forbidden on plain connections"


def test_scope_passes_the_recorders_checks(server: Harness) -> None:
    rid = new_rid()
    server.http.post("/scope?x=1", content=b"abc", headers={"x-rid": rid})
    assert server.info(rid)["violations"] == []


def test_root_path_prefixes_path_and_raw_path(start_server: Any) -> None:
    srv = start_server("--root-path", "/api")
    scope = decode(srv.http.get("/scope/x%20y", headers={"x-rid": new_rid()}).json())
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/scope/x y"
    assert scope["raw_path"] == b"/api/scope/x%20y"


def test_unix_socket_server_is_path_and_none(tmp_path: Any) -> None:
    from tests.server.conftest import RECORDER, SERVER_KIND
    from tests.support.servers import run_server

    path = str(tmp_path / "dartle.sock")
    with run_server(RECORDER, "--uds", path, kind=SERVER_KIND) as process:
        assert path in process.url
        conn = RawConn.unix(path)
        try:
            conn.send(request("GET", "/scope", [("X-Rid", new_rid())]))
            response = conn.read_response()
        finally:
            conn.close()
        assert response.status == 200
        scope = decode(response.json())
        assert scope["server"] == [path, None]
        client = scope.get("client")
        assert client is None or (isinstance(client, list) and len(client) == 2)
        with httpx.Client(transport=httpx.HTTPTransport(uds=path), base_url="http://dartle") as c:
            assert c.get("/echo", headers={"x-rid": new_rid()}).status_code == 200


def test_client_port_matches_socket(server: Harness) -> None:
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        conn = RawConn(sock)
        conn.send(request("GET", "/scope", [("X-Rid", new_rid())]))
        scope = decode(conn.read_response().json())
        assert scope["client"][1] == sock.getsockname()[1]
