"""The framework over real sockets, on uvicorn and on the dartle server: HTTP."""

from __future__ import annotations

import json
import socket
import uuid

import httpx
import pytest

from tests.support.servers import ServerProcess


def test_plaintext_and_value_rendering(core_http: httpx.Client) -> None:
    r = core_http.get("/")
    assert (r.status_code, r.text) == (200, "Hello, world!")
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["content-length"] == "13"
    assert r.headers["x-middleware"] == "tagged"
    r = core_http.get("/text")
    assert (r.text, r.headers["content-type"]) == ("plain value", "text/plain; charset=utf-8")
    r = core_http.get("/dict")
    assert r.json() == {"a": 1, "b": [1, 2]}
    assert r.headers["content-type"] == "application/json"
    r = core_http.get("/none")
    assert (r.status_code, r.content) == (200, b"null")
    assert core_http.get("/html").headers["content-type"] == "text/html; charset=utf-8"


def test_head_is_answered_by_get_routes(core_http: httpx.Client) -> None:
    r = core_http.head("/")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == "13"


def test_path_convertors(core_http: httpx.Client) -> None:
    assert core_http.get("/items/42").json() == {"item_id": 42, "type": "int"}
    assert core_http.get("/items/abc").status_code == 404
    assert core_http.get("/files/a/b/c.txt").json() == {"rest": "a/b/c.txt"}
    u = uuid.uuid4()
    assert core_http.get(f"/uuid/{u}").json() == {"uuid": str(u), "version": 4}
    assert core_http.get("/uuid/not-a-uuid").status_code == 404
    assert core_http.get("/float/1.5").json() == {"x": 1.5}


def test_404_uses_registered_status_handler(core_http: httpx.Client) -> None:
    r = core_http.get("/no/such/page")
    assert r.status_code == 404
    assert r.json() == {"missing": "/no/such/page", "detail": "Not Found"}


def test_405_lists_allowed_methods(core_http: httpx.Client) -> None:
    r = core_http.delete("/items/3")
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, HEAD, PUT"
    assert core_http.put("/items/3").json() == {"updated": 3}


def test_redirect_slashes(core_http: httpx.Client) -> None:
    r = core_http.get("/slash?q=1", follow_redirects=False)
    assert r.status_code == 307
    assert r.headers["location"].endswith("/slash/?q=1")
    r = core_http.get("/text/", follow_redirects=False)
    assert r.status_code == 307
    assert httpx.URL(r.headers["location"]).path == "/text"
    assert core_http.get("/slash", follow_redirects=True).text == "with slash"


def test_request_attributes(core_http: httpx.Client, core_server: ServerProcess) -> None:
    r = core_http.get(
        "/inspect?a=1&a=2&b=",
        headers=[
            ("X-Multi", "one"),
            ("x-multi", "two"),
            ("x-request-id", "rid-7"),
            ("cookie", "session=abc; theme=dark"),
        ],
    )
    data = r.json()
    assert data["method"] == "GET"
    assert data["url"] == f"{core_server.url}/inspect?a=1&a=2&b="
    assert data["query"] == [["a", "1"], ["a", "2"], ["b", ""]]
    assert data["headers"] == ["one", "two"]
    assert data["cookies"] == {"session": "abc", "theme": "dark"}
    assert data["client_host"] == "127.0.0.1"
    assert data["request_id"] == "rid-7"
    assert data["url_for"] == f"{core_server.url}/items/7"
    assert data["state_db"] == "connected"
    assert data["app_started"] is True


def test_bodies(core_http: httpx.Client) -> None:
    payload = bytes(range(256)) * 1000
    r = core_http.post("/echo", content=payload, headers={"content-type": "application/x-bin"})
    assert r.content == payload
    assert r.headers["content-type"] == "application/x-bin"

    def chunks():  # chunked upload, no content-length
        for _ in range(10):
            yield b"x" * 10_000

    assert core_http.post("/stream-count", content=chunks()).json() == {"bytes": 100_000}
    assert core_http.post("/json", json={"k": [1, "é"]}).json() == {"received": {"k": [1, "é"]}}


def test_malformed_json_is_400_naming_the_problem(core_http: httpx.Client) -> None:
    r = core_http.post("/json", content=b'{"k": ', headers={"content-type": "application/json"})
    assert r.status_code == 400
    detail = r.json()["detail"]
    assert detail.startswith("Malformed JSON body")
    assert "line 1" in detail
    r = core_http.post("/json", content=b"\xff\xfe", headers={"content-type": "application/json"})
    assert r.status_code == 400


def test_urlencoded_and_multipart_forms(core_http: httpx.Client) -> None:
    r = core_http.post("/form", data={"name": "Ada", "lang": "py"})
    assert r.json() == {"name": "Ada", "lang": "py"}
    small = b"tiny file"
    big = b"B" * 20_000  # above the app's 1 KiB spool size: goes to disk
    r = core_http.post(
        "/form",
        data={"title": "two files"},
        files=[
            ("small", ("small.txt", small, "text/plain")),
            ("big", ("big.bin", big, "application/octet-stream")),
        ],
    )
    data = r.json()
    assert data["title"] == "two files"
    assert data["small"] == {
        "filename": "small.txt",
        "size": len(small),
        "content_type": "text/plain",
        "on_disk": False,
        "head": "tiny file",
    }
    assert data["big"]["size"] == 20_000
    assert data["big"]["on_disk"] is True


def test_form_limits(core_http: httpx.Client) -> None:
    # The app allows 5 fields, 2 files, 1 KiB per field, 64 KiB per file.
    r = core_http.post("/form", data={f"f{i}": "x" for i in range(6)})
    assert r.status_code == 400
    assert "Too many form fields" in r.json()["detail"]
    files = [(f"f{i}", (f"{i}.txt", b"x", "text/plain")) for i in range(3)]
    r = core_http.post("/form", files=files)
    assert r.status_code == 400
    assert "Too many files" in r.json()["detail"]
    r = core_http.post("/form", files={"a": ("a.txt", b"x")}, data={"long": "y" * 2000})
    assert r.status_code == 413
    assert "'long'" in r.json()["detail"]
    r = core_http.post("/form", files={"huge": ("huge.bin", b"z" * 70_000)})
    assert r.status_code == 413
    assert "huge.bin" in r.json()["detail"]


def test_malformed_multipart_is_400(core_http: httpx.Client) -> None:
    r = core_http.post("/form", content=b"garbage", headers={"content-type": "multipart/form-data"})
    assert r.status_code == 400
    assert "boundary" in r.json()["detail"]
    body = b'--XX\r\nContent-Disposition: form-data; name="a"\r\n\r\nvalue'  # no closing boundary
    r = core_http.post("/form", content=body, headers={"content-type": "multipart/form-data; boundary=XX"})
    assert r.status_code == 400
    assert "Malformed multipart" in r.json()["detail"]


def test_sync_handler_runs_in_pool_and_calls_back_into_loop(core_http: httpx.Client) -> None:
    data = core_http.get("/sync").json()
    assert data["thread"].startswith("dartle-sync")
    assert data["doubled"] == 42


def test_context_variables_cross_function_middleware(core_http: httpx.Client) -> None:
    r = core_http.get("/context", headers={"x-request-id": "abc"})
    assert r.json() == {"request_id": "abc"}
    # Set inside the handler, read by the middleware after call_next.
    assert r.headers["x-handler-mark"] == "set-in-handler"


def test_redirect_and_cookies(core_http: httpx.Client) -> None:
    r = core_http.get("/redirect", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (302, "/text")
    r = core_http.get("/cookies/set")
    cookies = r.headers.get_list("set-cookie")
    assert cookies[0] == "plain=v1; Max-Age=60; Path=/; HttpOnly; SameSite=Lax"
    full = cookies[1]
    for part in (
        "full=v2",
        "Path=/cookies",
        "Domain=localhost",
        "Secure",
        "SameSite=Strict",
        "Partitioned",
        "Expires=",
    ):
        assert part in full
    assert cookies[2].startswith("gone=; Expires=")
    assert "Max-Age=0" in cookies[2]


def test_streaming_sync_and_async(core_http: httpx.Client) -> None:
    for path in ("/stream/sync", "/stream/async"):
        with core_http.stream("GET", path) as r:
            assert "content-length" not in r.headers
            assert b"".join(r.iter_bytes()) == b"0\n1\n2\n3\n4\n"


def test_streaming_stops_when_client_disconnects(core_server: ServerProcess) -> None:
    with socket.create_connection((core_server.host, core_server.port)) as sock:
        sock.sendall(b"GET /stream/endless?name=s1 HTTP/1.1\r\nHost: t\r\n\r\n")
        received = b""
        while b"first" not in received:
            chunk = sock.recv(4096)
            assert chunk, "server closed before the first chunk"
            received += chunk
    # The generator's finally block ran: the stream noticed the disconnect.
    with httpx.Client(base_url=core_server.url, timeout=15) as client:
        assert client.get("/wait/stopped:s1").json() == {"happened": True}


def test_server_sent_events(core_http: httpx.Client) -> None:
    with core_http.stream("GET", "/sse") as r:
        assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert r.headers["cache-control"] == "no-store"
        text = ""
        lines = r.iter_text()
        while ": ping" not in text:
            text += next(lines)
        assert core_http.get("/sse/release").text == "released"
        text += "".join(lines)
    assert text.startswith(
        "id: 1\nevent: greeting\nretry: 2000\ndata: hello\n\n"
        'id: 2\ndata: {"n":2}\n\n'
        "data: multi\ndata: line\n\n"
    )
    assert text.endswith("event: end\ndata: done\n\n")


def test_background_task_runs_after_response(core_http: httpx.Client) -> None:
    name = uuid.uuid4().hex
    assert core_http.get("/background", params={"name": name}).text == "sent first"
    assert core_http.get(f"/wait/bg:{name}").json() == {"happened": True}


def test_errors(core_http: httpx.Client) -> None:
    r = core_http.get("/error/http")
    assert (r.status_code, r.json(), r.headers["x-error"]) == (409, {"detail": "already exists"}, "yes")
    r = core_http.get("/error/teapot")
    assert (r.status_code, r.text) == (418, "teapot: short and stout")
    r = core_http.get("/error/crash", headers={"accept": "text/html"})
    assert r.status_code == 500
    assert r.text == "Internal Server Error"
    assert "secret internal detail" not in r.text
    assert "Traceback" not in r.text


def test_router_prefix_and_tags(core_http: httpx.Client) -> None:
    assert core_http.get("/api/users/ada").json() == {"user": "ada", "tags": ["api"]}


def test_mounted_starlette_app_sees_root_path(core_http: httpx.Client, core_server: ServerProcess) -> None:
    data = core_http.get("/starlette/where").json()
    assert data == {
        "path": "/starlette/where",
        "root_path": "/starlette",
        "url": f"{core_server.url}/starlette/where",
        "route_path": "/where",
    }


def test_mounted_dartle_app(core_http: httpx.Client, core_server: ServerProcess) -> None:
    data = core_http.get("/sub/where").json()
    assert data == {"path": "/sub/where", "root_path": "/sub", "url": f"{core_server.url}/sub/where"}


def test_host_routing(core_http: httpx.Client) -> None:
    r = core_http.get("/", headers={"host": "acme.example.test"})
    assert r.json() == {"tenant": "acme"}
    assert core_http.get("/", headers={"host": "other.test"}).text == "Hello, world!"


def test_json_body_response_is_not_truncated_or_mangled(core_http: httpx.Client) -> None:
    payload = {"text": "ünïcødé ✓", "n": list(range(1000))}
    assert json.loads(core_http.post("/json", json=payload).content) == {"received": payload}


@pytest.mark.parametrize("path", ["/items/%34%32", "/files/a%2Fb"])
def test_percent_encoded_paths(core_http: httpx.Client, path: str) -> None:
    r = core_http.get(path)
    assert r.status_code == 200


@pytest.fixture(scope="module", params=["uvicorn", "dartle"])
def behind_proxy(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """The core app served with --root-path /prefix (a proxy stripped the prefix)."""
    from tests.support.servers import run_server

    with run_server("tests.web.apps.core:app", "--root-path", "/prefix", kind=request.param) as server:
        yield server


def test_server_root_path(behind_proxy: ServerProcess) -> None:
    with httpx.Client(base_url=behind_proxy.url, timeout=10) as client:
        assert client.get("/items/3").json() == {"item_id": 3, "type": "int"}
        data = client.get("/inspect").json()
        assert data["url_for"] == f"{behind_proxy.url}/prefix/items/7"
        assert data["path"] == "/prefix/inspect"
        where = client.get("/starlette/where").json()
        assert where["root_path"] == "/prefix/starlette"
        assert where["path"] == "/prefix/starlette/where"
        r = client.get("/slash", follow_redirects=False)
        assert r.headers["location"] == f"{behind_proxy.url}/prefix/slash/"
