"""ASGI extensions over HTTP/2: trailers, early hints (103), server push, pathsend."""

from __future__ import annotations

import os
from pathlib import Path

from tests.server import h2fixtures
from tests.server.asgi_json import decode
from tests.server.h2client import SETTINGS
from tests.server.h2fixtures import H2Harness, dartle_only

pytestmark = dartle_only

# the HTTP/2 fixtures (h2fixtures.py), under the names the tests ask for
h2_server = h2fixtures.h2_server
h2_shared = h2fixtures.h2_shared
start_h2 = h2fixtures.start_h2


def test_trailers_with_te_trailers(h2_server: H2Harness) -> None:
    response = h2_server.h2().get("/trailers", [("te", "trailers")])
    assert response.status == 200
    assert response.body == b"abcdef"
    assert response.trailers == [("x-checksum", "abcdef-ok")]


def test_no_trailers_without_te(h2_server: H2Harness) -> None:
    response = h2_server.h2().get("/trailers")
    assert response.body == b"abcdef"
    assert response.trailers is None
    assert response.reset is None


def test_trailers_wait_for_flow_control(h2_server: H2Harness) -> None:
    client = h2_server.h2(settings={SETTINGS.INITIAL_WINDOW_SIZE: 2})
    client.wait_settings()
    sid = client.request("GET", "/trailers", [("te", "trailers")])
    response = client.response(sid)  # the client hands window back as data arrives
    assert response.body == b"abcdef"
    assert response.trailers == [("x-checksum", "abcdef-ok")]


def test_early_hints(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    path = "/early-hint?link=%3C%2Fstyle.css%3E%3B+rel%3Dpreload&link=%3C%2Fapp.js%3E%3B+rel%3Dpreload"
    response = client.get(path)
    assert len(response.informational) == 1
    hint = response.informational[0]
    assert hint[0] == (":status", "103")
    assert [v for k, v in hint if k == "link"] == ["</style.css>; rel=preload", "</app.js>; rel=preload"]
    assert response.status == 200
    assert response.body == b"after hints"


def test_push_when_the_client_allows_it(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    client.wait_settings()
    sid = client.request("GET", "/push?path=/pushed/a.css&path=/pushed/b.js?v=2")
    response = client.response(sid)
    assert response.json() == {"advertised": True}
    assert [p.headers for p in response.pushes] == [
        [(":method", "GET"), (":scheme", "http"), (":path", "/pushed/a.css"),
         (":authority", f"127.0.0.1:{h2_server.port}"), ("accept", "application/json")],
        [(":method", "GET"), (":scheme", "http"), (":path", "/pushed/b.js?v=2"),
         (":authority", f"127.0.0.1:{h2_server.port}"), ("accept", "application/json")],
    ]
    scopes = {}
    for push in response.pushes:
        pushed = client.response(push.pushed_stream_id)
        assert pushed.status == 200
        scopes[push.pushed_stream_id] = decode(pushed.json())
    first, second = (scopes[p.pushed_stream_id] for p in response.pushes)
    assert first["method"] == "GET"
    assert first["http_version"] == "2"
    assert first["path"] == "/pushed/a.css"
    assert second["query_string"] == b"v=2"
    assert first["headers"] == [[b"host", f"127.0.0.1:{h2_server.port}".encode()],
                                [b"accept", b"application/json"]]
    assert all(p.pushed_stream_id % 2 == 0 for p in response.pushes), "server streams are even"


def test_no_push_when_the_client_refuses_it(h2_server: H2Harness) -> None:
    client = h2_server.h2(settings={SETTINGS.ENABLE_PUSH: 0})
    client.wait_settings()
    response = client.get("/push?path=/pushed/a.css")
    assert response.json() == {"advertised": False}
    assert response.pushes == []


def test_pathsend(h2_server: H2Harness, tmp_path: Path) -> None:
    client = h2_server.h2()
    for size in (10, 300_000):
        data = os.urandom(size)
        path = tmp_path / f"file-{size}"
        path.write_bytes(data)
        response = client.get(f"/pathsend?path={path}")
        assert response.status == 200
        assert response.header("content-length") == str(size)
        assert response.body == data


def test_pathsend_under_a_small_window(h2_server: H2Harness, tmp_path: Path) -> None:
    client = h2_server.h2(settings={SETTINGS.INITIAL_WINDOW_SIZE: 1000})
    client.wait_settings()
    data = os.urandom(200_000)
    path = tmp_path / "file"
    path.write_bytes(data)
    assert client.get(f"/pathsend?path={path}").body == data


def test_extensions_advertised(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    client.wait_settings()
    scope = decode(client.get("/scope").json())
    assert set(scope["extensions"]) == {
        "http.response.trailers", "http.response.pathsend", "http.response.early_hint",
        "http.response.push",
    }

