"""The WSGI bridge (dartle.asgi.wsgi) over real sockets, on the dartle server.

The test app is plain WSGI (tests/asgi/apps/wsgi_apps.py); what its WSGI side did is read
back through ASGI /ctl/* endpoints, waiting on events rather than sleeping. The module's
server runs with --strict-asgi, so every event the bridge sends is also checked against
the ASGI specification.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.asgi.conftest import WSGI_APPS, Bridge, new_rid
from tests.server.rawhttp import RawConn, ServerClosed, chunked, request
from tests.support.servers import ROOT, run_server

# -- environ ------------------------------------------------------------------------------------


def test_environ_is_complete(bridge: Bridge) -> None:
    conn = RawConn.tcp(bridge.host, bridge.port)
    try:
        conn.send(request("POST", "/environ?x=1&y=%20z", [
            ("Host", "example.test:8080"),
            ("Content-Type", "text/plain"),
            ("X-Multi", "a"),
            ("X-Multi", "b"),
            ("X_Multi", "forged"),
            ("Cookie", "a=1"),
            ("Cookie", "b=2"),
        ], body=b"hello"))
        env = conn.read_response().json()
        client_port = conn.local_port
    finally:
        conn.close()
    assert env["REQUEST_METHOD"] == "POST"
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("", "/environ")
    assert env["QUERY_STRING"] == "x=1&y=%20z"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("127.0.0.1", str(bridge.port))
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("127.0.0.1", str(client_port))
    assert env["CONTENT_TYPE"] == "text/plain"
    assert env["CONTENT_LENGTH"] == "5"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    assert env["HTTP_HOST"] == "example.test:8080"
    # repeated fields are joined; the underscore spelling cannot pose as X-Multi
    assert env["HTTP_X_MULTI"] == "a,b"
    assert env["HTTP_COOKIE"] == "a=1; b=2"
    assert env["wsgi.url_scheme"] == "http"
    assert "HTTPS" not in env
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.multithread"] is True
    assert env["wsgi.run_once"] is False
    assert env["wsgi.input_terminated"] is True
    assert env["wsgi.errors"] is True and env["wsgi.file_wrapper"] is True
    assert env["body"] == "hello"


def test_non_ascii_path_is_a_native_string(bridge: Bridge) -> None:
    env = bridge.http.get("/environ/caf%C3%A9").json()
    assert env["PATH_INFO"] == "/environ/café".encode().decode("latin-1")


def test_proxy_headers_give_scheme_https_and_client() -> None:
    with run_server(f"{WSGI_APPS}:wsgi_app", "--forwarded-allow-ips", "127.0.0.1") as process:
        env = httpx.get(process.url + "/environ", headers={
            "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9",
        }, timeout=10).json()
    assert env["wsgi.url_scheme"] == "https"
    assert env["HTTPS"] == "on"
    assert env["REMOTE_ADDR"] == "203.0.113.9"


def test_root_path_becomes_script_name() -> None:
    with run_server(f"{WSGI_APPS}:wsgi_app", "--root-path", "/mount") as process:
        env = httpx.get(process.url + "/environ", timeout=10).json()
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/mount", "/environ")


# -- request bodies -----------------------------------------------------------------------------


def test_request_body_is_streamed_to_the_app(bridge: Bridge) -> None:
    """The app answers the first line before the client has sent the second."""
    conn = RawConn.tcp(bridge.host, bridge.port)
    try:
        conn.send(request("POST", "/echo-lines", [("Transfer-Encoding", "chunked")]) + b"6\r\nalpha\n\r\n")
        head = conn.read_head()
        assert head.status == 200 and head.header("transfer-encoding") == "chunked"
        assert conn.read_chunk() == b"line 1: alpha\n"
        conn.send(b"5\r\nbeta\n\r\n")
        assert conn.read_chunk() == b"line 2: beta\n"
        conn.send(b"6\r\ngamma\n\r\n0\r\n\r\n")
        assert conn.read_chunk() == b"line 3: gamma\n"
        assert conn.read_chunk() == b"end after 17 bytes\n"
        assert conn.read_chunk() == b""
    finally:
        conn.close()


def test_large_upload_is_read_in_pieces(bridge: Bridge) -> None:
    rid = new_rid()
    size = 8 * 1024 * 1024

    def body() -> Iterator[bytes]:
        for _ in range(size // 65536):
            yield b"u" * 65536

    r = bridge.http.post("/upload", params={"rid": rid, "read": "1000"}, content=body())
    assert (r.status_code, r.json()) == (200, {"bytes": size})


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_readline_and_readlines(bridge: Bridge, framing: str) -> None:
    parts = [b"abc", b"def\nsec", b"ond\nthird"]
    conn = RawConn.tcp(bridge.host, bridge.port)
    try:
        if framing == "chunked":
            conn.send(request("POST", "/readline?limit=4", [("Transfer-Encoding", "chunked")]))
            conn.send(chunked(*parts))
        else:
            conn.send(request("POST", "/readline?limit=4", body=b"".join(parts)))
        data = conn.read_response().json()
    finally:
        conn.close()
    assert data == {"first": "abcd", "rest": ["ef\n", "second\n", "third"]}


def test_client_leaving_mid_upload_unblocks_the_app(bridge: Bridge) -> None:
    rid = new_rid()
    conn = RawConn.tcp(bridge.host, bridge.port)
    conn.send(request("POST", f"/upload?rid={rid}&read=100000", [("Transfer-Encoding", "chunked")]))
    conn.send(b"400\r\n" + b"p" * 1024 + b"\r\n")
    bridge.wait(rid, "entered")
    conn.close()
    record = bridge.wait(rid, "error")
    assert record["error"].startswith("ClientDisconnected"), record
    assert record["finished"]


@pytest.fixture(scope="module")
def capped() -> Iterator[Bridge]:
    with run_server(f"{WSGI_APPS}:capped", "--strict-asgi") as process:
        harness = Bridge(process)
        yield harness
        harness.close()


def test_declared_body_over_the_cap_is_refused_before_the_app_runs(capped: Bridge) -> None:
    rid = new_rid()
    r = capped.http.post("/upload", params={"rid": rid}, content=b"x" * 2048)
    assert r.status_code == 413
    assert "1024 bytes" in r.text
    assert capped.info(rid)["entered"] is False


def test_chunked_body_over_the_cap_is_cut_off_with_413(capped: Bridge) -> None:
    rid = new_rid()
    conn = RawConn.tcp(capped.host, capped.port)
    try:
        conn.send(request("POST", f"/upload?rid={rid}&read=100", [("Transfer-Encoding", "chunked")]))
        conn.send(b"200\r\n" + b"c" * 512 + b"\r\n")
        capped.wait(rid, "entered")  # the app is reading: the rest goes through the stream
        conn.send(chunked(*[b"c" * 512] * 3))
        response = conn.read_response()
    finally:
        conn.close()
    assert response.status == 413
    assert b"1024 bytes" in response.body
    record = capped.wait(rid, "finished")
    assert record["error"].startswith("RequestBodyTooLarge"), record
    assert record["body_bytes"] <= 1024


def test_body_within_the_cap_is_served(capped: Bridge) -> None:
    r = capped.http.post("/upload", content=b"x" * 1024)
    assert (r.status_code, r.json()) == (200, {"bytes": 1024})


# -- responses ----------------------------------------------------------------------------------


def test_streamed_response_and_close_is_called(bridge: Bridge) -> None:
    rid = new_rid()
    r = bridge.http.get("/stream", params={"rid": rid, "chunks": "5", "size": "1000"})
    assert r.status_code == 200
    assert r.content == b"x" * 5000
    record = bridge.wait(rid, "closed")
    assert (record["finished"], record["closed"]) == (True, 1)


def test_response_backpressure_stalls_the_app_not_memory(bridge: Bridge) -> None:
    """A client that reads nothing stops the WSGI iterable; leaving makes close() run."""
    rid = new_rid()
    chunks, size = 16 * 1024, 64 * 1024  # 1 GiB if nothing held the app back
    sock = socket.create_connection((bridge.host, bridge.port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    try:
        sock.sendall(request("GET", f"/stream?rid={rid}&chunks={chunks}&size={size}"))
        record = bridge.wait(rid, "stalled", timeout=30)
        assert not record["finished"]
        # socket buffers on both sides plus the bridge's own high-water mark: a few MiB
        assert record["chunks"] < 256, record
    finally:
        sock.close()
    record = bridge.wait(rid, "closed")
    assert record["closed"] == 1 and not record["finished"]
    assert record["chunks"] < 256


def test_iterable_failing_midway_aborts_and_still_closes(bridge: Bridge) -> None:
    rid = new_rid()
    conn = RawConn.tcp(bridge.host, bridge.port)
    try:
        conn.send(request("GET", f"/stream?rid={rid}&chunks=5&size=10&fail_after=2"))
        head = conn.read_head()
        assert head.status == 200
        with pytest.raises(ServerClosed):
            conn.read_body(head)
    finally:
        conn.close()
    assert bridge.wait(rid, "closed")["closed"] == 1
    assert "the iterable failed on purpose" in bridge.log()


def test_exc_info_before_the_body_replaces_the_response(bridge: Bridge) -> None:
    r = bridge.http.get("/exc-info-early")
    assert r.status_code == 500
    assert r.headers["x-error"] == "yes"
    assert "x-early" not in r.headers
    assert r.text == "recovered"


def test_exc_info_after_the_body_started_reraises_and_aborts(bridge: Bridge) -> None:
    rid = new_rid()
    conn = RawConn.tcp(bridge.host, bridge.port)
    try:
        conn.send(request("GET", f"/exc-info-late?rid={rid}"))
        head = conn.read_head()
        assert head.status == 200
        with pytest.raises(ServerClosed):
            conn.read_body(head)
        assert head.chunks == [b"first part;"]  # what was written before exc_info came
    finally:
        conn.close()
    assert bridge.info(rid)["notes"]["reraised"] == "broke after the headers went out"
    assert "broke after the headers went out" in bridge.log()


def test_write_callable(bridge: Bridge) -> None:
    r = bridge.http.get("/write")
    assert (r.status_code, r.text) == (200, "one;two;three")


def test_file_wrapper(bridge: Bridge) -> None:
    r = bridge.http.get("/file", params={"tens": "1000"})
    assert r.status_code == 200
    assert r.content == b"0123456789" * 1000


@pytest.mark.parametrize(("path", "logged"), [
    ("/fail-before", "the app failed before start_response"),
    ("/twice", "start_response() called a second time"),
    ("/str-chunk", "WSGI response chunks must be bytes, not str"),
    ("/bad-status", "WSGI status must look like '200 OK', not 'OK'"),
    ("/bad-header", "has a CR, LF or NUL in its value"),
])
def test_app_errors_become_500_with_a_message(bridge: Bridge, path: str, logged: str) -> None:
    r = bridge.http.get(path)
    assert r.status_code == 500
    assert "injected" not in r.headers
    bridge.process.wait_for_log(rb"(?s)" + logged.replace("(", r"\(").replace(")", r"\)").encode())


# -- threads and the loop -----------------------------------------------------------------------


def test_wsgi_code_can_call_async_code_on_the_loop(bridge: Bridge) -> None:
    data = bridge.http.get("/bridge").json()
    assert data["doubled"] == 42
    assert data["loop_thread"] is True
    assert data["wsgi_thread"].startswith("dartle-sync")


def test_thread_pool_bounds_concurrent_wsgi_requests() -> None:
    with run_server(f"{WSGI_APPS}:limited_app", "--factory") as process:
        harness = Bridge(process)
        rids = [new_rid() for _ in range(3)]
        results: dict[str, int] = {}

        def call(rid: str) -> None:
            results[rid] = httpx.get(process.url + "/block", params={"rid": rid}, timeout=30).status_code

        threads = [threading.Thread(target=call, args=(rid,)) for rid in rids]
        for thread in threads:
            thread.start()
        try:
            assert harness.ctl("wait-active", n=2).status_code == 200
            # the third request waits in the pool's queue instead of getting a thread
            assert harness.ctl("wait-queued", n=1).json() == {"queued": 1}
            assert harness.ctl("active").json() == {"active": 2, "max_active": 2}
        finally:
            for rid in rids:
                harness.ctl("release", rid=rid)
            for thread in threads:
                thread.join(30)
        assert results == dict.fromkeys(rids, 200)
        assert harness.ctl("active").json()["max_active"] == 2
        harness.close()


# -- loading: auto-detection and --interface ----------------------------------------------------


@pytest.mark.parametrize("flags", [(), ("--interface", "wsgi")], ids=["auto", "interface-wsgi"])
def test_wsgi_callable_is_served(flags: tuple[str, ...]) -> None:
    with run_server(f"{WSGI_APPS}:wsgi_app", "--lifespan", "on", *flags) as process:
        r = httpx.get(process.url + "/write", timeout=10)
        assert (r.status_code, r.text) == (200, "one;two;three")
        assert b"Application startup complete" in process.read_log()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dartle", "run", *args, "--port", "0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("target", "flags", "message"), [
    ("not_an_app", (), "is not an ASGI or WSGI app: it takes 0 arguments"),
    ("async_two", ("--interface", "wsgi"), "is an async callable, not a WSGI app"),
])
def test_what_cannot_be_served_is_a_one_line_error(target: str, flags: tuple[str, ...], message: str) -> None:
    result = _cli(f"{WSGI_APPS}:{target}", *flags)
    assert result.returncode == 1
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert message in lines[0] and target in lines[0]


def test_wsgi_app_mounted_in_a_dartle_app() -> None:
    with run_server(f"{WSGI_APPS}:mounted_app", "--factory", "--root-path", "/site") as process:
        assert httpx.get(process.url + "/", timeout=10).text == "dartle home"
        env = httpx.get(process.url + "/legacy/environ?q=1", timeout=10).json()
    assert (env["SCRIPT_NAME"], env["PATH_INFO"], env["QUERY_STRING"]) == ("/site/legacy", "/environ", "q=1")


def test_server_body_limit_applies_to_wsgi_apps() -> None:
    """`dartle run --max-body-size` caps WSGI uploads too, chunked or not."""
    with run_server(f"{WSGI_APPS}:wsgi_app", "--max-body-size", "1024") as process:
        assert httpx.post(process.url + "/upload", content=b"x" * 2048, timeout=10).status_code == 413
        conn = RawConn.tcp(process.host, process.port)
        try:
            conn.send(request("POST", "/upload?read=100", [("Transfer-Encoding", "chunked")]))
            conn.send(chunked(*[b"c" * 512] * 4))
            assert conn.read_response().status == 413
        finally:
            conn.close()
        ok = httpx.post(process.url + "/upload", content=b"x" * 1024, timeout=10)
        assert (ok.status_code, ok.json()) == (200, {"bytes": 1024})
