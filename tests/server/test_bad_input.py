"""Bad input gets a clear status and a closed connection, and never reaches the app."""

from __future__ import annotations

import select
import time
from typing import Any

import pytest

from tests.server.conftest import Harness, dartle_only, new_rid, uvicorn_differs
from tests.server.rawhttp import RawConn, chunked, request


def answer(conn: RawConn, data: bytes) -> int:
    """Send raw bytes; return the status of the answer and check the server then closes."""
    conn.send(data)
    response = conn.read_response()
    assert conn.closed_by_server() == b"", "the connection must be closed after bad input"
    return response.status


def never_seen(server: Harness, marker: str) -> None:
    # Any later request on a fresh connection is served after the bad one was handled.
    assert server.http.get("/echo", headers={"x-rid": new_rid()}).status_code == 200
    assert not [line for line in server.seen() if marker in line], f"the app saw {marker}"


MALFORMED_HEAD = {
    "garbage request line": b"GARBAGE /%s\r\n\r\n",
    "space in target": b"GET /%s b HTTP/1.1\r\nHost: x\r\n\r\n",
    "header without colon": b"GET /%s HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
    "space before colon": b"GET /%s HTTP/1.1\r\nHost: x\r\nX-Bad : v\r\n\r\n",
    "control char in name": b"GET /%s HTTP/1.1\r\nHost: x\r\nX-B\x01d: v\r\n\r\n",
    "nul in value": b"GET /%s HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "bad content-length": b"POST /%s HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "negative content-length": b"POST /%s HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
}


@pytest.mark.parametrize("data", list(MALFORMED_HEAD.values()), ids=list(MALFORMED_HEAD))
def test_malformed_head_is_400(server: Harness, data: bytes) -> None:
    marker = new_rid("bad")
    assert answer(server.raw(), data % marker.encode()) == 400
    never_seen(server, marker)


UNSUPPORTED_VERSIONS = {
    "no version": b"GET /%s\r\nHost: x\r\n\r\n",
    "HTTP/0.9": b"GET /%s HTTP/0.9\r\nHost: x\r\n\r\n",
    "HTTP/2.0": b"GET /%s HTTP/2.0\r\nHost: x\r\n\r\n",
}


@uvicorn_differs("serves them to the app with http_version '0.9' or '2.0'")
@pytest.mark.parametrize("data", list(UNSUPPORTED_VERSIONS.values()), ids=list(UNSUPPORTED_VERSIONS))
def test_unsupported_http_version_is_refused(server: Harness, data: bytes) -> None:
    """ASGI's http_version is "1.0", "1.1" or "2"; llhttp lets 0.9 and 2.0 request lines through."""
    marker = new_rid("version")
    assert answer(server.raw(), data % marker.encode()) in (400, 505)
    never_seen(server, marker)


@pytest.mark.parametrize("target", [b"/scope/%FF%FE", b"/scope/caf\xc3\xa9", b"/scope/%00"])
def test_odd_paths_get_an_answer(server: Harness, target: bytes) -> None:
    """Invalid UTF-8, raw non-ASCII or NUL in a path: served or refused, never a crash."""
    conn = server.raw()
    conn.send(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    response = conn.read_response()
    assert response.status in (200, 400), response
    if response.status == 200:
        assert isinstance(response.json()["path"], str)
    assert server.http.get("/echo", headers={"x-rid": new_rid()}).status_code == 200


@dartle_only
def test_request_line_over_the_limit(start_server: Any) -> None:
    srv = start_server("--max-header-size", "4096")
    status = answer(srv.raw(), request("GET", "/scope/" + "a" * 5000))
    assert status in (414, 431)


SMUGGLING = {
    "content-length with transfer-encoding": (
        b"POST /%(m)s HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\nGET /%(m)s-smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    ),
    "transfer-encoding with content-length": (
        b"POST /%(m)s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 30\r\n\r\n"
        b"0\r\n\r\nGET /%(m)s-smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    ),
    "differing duplicate content-length": (
        b"POST /%(m)s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 42\r\n\r\n"
        b"helloGET /%(m)s-smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    ),
    "obs-fold": (b"GET /%(m)s HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n  b\r\n\r\n"),
    "obs-fold of transfer-encoding": (
        b"POST /%(m)s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"
        b"0\r\n\r\n"
    ),
}


@pytest.mark.parametrize("data", list(SMUGGLING.values()), ids=list(SMUGGLING))
def test_smuggling_vectors_are_400_and_never_reach_the_app(server: Harness, data: bytes) -> None:
    marker = new_rid("smuggle")
    assert answer(server.raw(), data % {b"m": marker.encode()}) == 400
    never_seen(server, marker)


BAD_CHUNKS = {
    "non-hex size": b"zz\r\nhello\r\n0\r\n\r\n",
    "negative size": b"-5\r\nhello\r\n0\r\n\r\n",
    "0x prefix": b"0x5\r\nhello\r\n0\r\n\r\n",
    "overflowing size": b"ffffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
    "missing CRLF after data": b"5\r\nhelloXX0\r\n\r\n",
}


@pytest.mark.parametrize("body", list(BAD_CHUNKS.values()), ids=list(BAD_CHUNKS))
def test_invalid_chunk_is_400(server: Harness, body: bytes) -> None:
    marker = new_rid("chunk")
    smuggled = b"GET /%s-smuggled HTTP/1.1\r\nHost: x\r\n\r\n" % marker.encode()
    head = request("POST", f"/echo?m={marker}", [("Transfer-Encoding", "chunked"), ("X-Rid", marker)])
    assert answer(server.raw(), head + body + smuggled) == 400
    never_seen(server, f"{marker}-smuggled")
    # The app may have started on the head, but it must never get a complete body.
    events = server.info(marker)["events"]
    assert not [e for e in events if e["type"] == "http.request" and not e["more_body"]], events


@uvicorn_differs("answers 400, where RFC 9112 section 6.1 says 501")
@pytest.mark.parametrize("coding", ["gzip", "x-custom"])
def test_unknown_transfer_encoding_is_501(server: Harness, coding: str) -> None:
    marker = new_rid("te")
    data = request("POST", f"/{marker}", [("Transfer-Encoding", coding)], body=b"abc", length=False)
    assert answer(server.raw(), data) == 501
    never_seen(server, marker)


@dartle_only
def test_header_section_over_the_limit_is_431(start_server: Any) -> None:
    srv = start_server("--max-header-size", "4096")
    marker = new_rid("big")
    fits = request("GET", f"/{marker}-fits", [("X-Pad", "a" * 3000)])
    conn = srv.raw()
    conn.send(fits)
    assert conn.read_response().status == 200
    too_big = request("GET", f"/{marker}", [("X-Pad", "a" * 5000)])
    assert answer(srv.raw(), too_big) == 431
    many = request("GET", f"/{marker}", [(f"X-H{i}", "v" * 40) for i in range(200)])
    assert answer(srv.raw(), many) == 431
    never_seen(srv, f"/{marker} ")


@dartle_only
@pytest.mark.parametrize("flag", ["--h11-max-header-size", "--h11-max-incomplete-event-size"])
def test_header_limit_aliases(start_server: Any, flag: str) -> None:
    srv = start_server(flag, "4096")
    assert answer(srv.raw(), request("GET", "/scope", [("X-Pad", "a" * 5000)])) == 431


@dartle_only
def test_body_over_the_limit_is_413(start_server: Any) -> None:
    srv = start_server("--max-body-size", "1000")
    at_limit = srv.http.post("/echo", content=b"y" * 1000, headers={"x-rid": new_rid()})
    assert at_limit.status_code == 200 and len(at_limit.content) == 1000

    # Declared too large: refused from the head alone, before any body byte is sent.
    marker = new_rid("cl")
    conn = srv.raw()
    conn.send(request("POST", "/echo", [("X-Rid", marker), ("Content-Length", "5000")]))
    assert conn.read_response().status == 413
    assert conn.closed_by_server() == b""
    never_seen(srv, marker)

    # With Expect: 100-continue the refusal comes instead of the 100 Continue.
    marker = new_rid("expect")
    conn = srv.raw()
    conn.send(
        request("POST", "/echo", [("X-Rid", marker), ("Content-Length", "5000"), ("Expect", "100-continue")])
    )
    assert conn.read_response().status == 413
    never_seen(srv, marker)

    # Chunked: refused while streaming, once the total passes the limit.
    rid = new_rid("chunked")
    conn = srv.raw()
    conn.send(request("POST", "/echo", [("X-Rid", rid), ("Transfer-Encoding", "chunked")]))
    conn.send(chunked(*([b"z" * 300] * 5)))
    response = conn.read_response()
    assert response.status == 413
    assert conn.closed_by_server() == b""
    events = srv.info(rid)["events"]
    assert sum(event.get("len", 0) for event in events) <= 1000
    assert not [e for e in events if e["type"] == "http.request" and not e["more_body"]], events


@dartle_only
def test_slow_headers_are_cut_off(start_server: Any) -> None:
    srv = start_server("--timeout-header", "1")
    slow = srv.raw(timeout=15)
    slow.send(b"GET /scope HTTP/1.1\r\nHost: x\r\n")  # never finished
    # Meanwhile a well-behaved client is served.
    assert srv.http.get("/echo", headers={"x-rid": new_rid()}).status_code == 200
    leftover = slow.closed_by_server(timeout=15)
    assert leftover == b"" or leftover.startswith(b"HTTP/1.1 408"), leftover


@dartle_only
def test_header_timeout_does_not_cut_a_slow_body(start_server: Any) -> None:
    srv = start_server("--timeout-header", "1")
    upload = srv.raw(timeout=20)
    upload.send(
        request("POST", "/slow-echo", [("X-Rid", new_rid()), ("Transfer-Encoding", "chunked")])
        + b"1\r\na\r\n"
    )
    assert upload.read_head().status == 200
    assert upload.read_chunk() == b"a"
    # A connection that never finishes its head is the clock for the header timeout.
    clock = srv.raw(timeout=20)
    clock.send(b"GET / HTTP/1.1\r\n")
    clock.closed_by_server(timeout=15)
    upload.send(b"1\r\nb\r\n0\r\n\r\n")
    assert upload.read_chunk() == b"b"
    assert upload.read_chunk() == b""


@dartle_only
def test_dribbled_headers_are_cut_off(start_server: Any) -> None:
    """Slowloris: bytes keep coming, but the head is never complete within the timeout."""
    srv = start_server("--timeout-header", "1")
    slow = srv.raw(timeout=15)
    slow.send(b"GET /scope HTTP/1.1\r\n")
    deadline = time.monotonic() + 15
    closed = False
    while time.monotonic() < deadline and not closed:
        # The select both paces the dribble and notices the server closing.
        ready, _, _ = select.select([slow.sock], [], [], 0.2)
        if ready:
            data = slow.sock.recv(65536)
            closed = data == b"" or data.startswith(b"HTTP/1.1 408")
            continue
        try:
            slow.send(b"X: y\r\n")
        except (BrokenPipeError, ConnectionResetError):
            closed = True
    assert closed, "a client dribbling header lines kept its connection past --timeout-header"


@uvicorn_differs("counts its own connection, so a limit is reached one request earlier")
def test_over_the_concurrency_limit_is_503(start_server: Any) -> None:
    srv = start_server("--limit-concurrency", "2")
    held = []
    statuses = []
    for _ in range(4):
        conn = srv.raw()
        conn.send(
            request("POST", "/slow-echo", [("X-Rid", new_rid()), ("Transfer-Encoding", "chunked")])
            + b"1\r\na\r\n"
        )
        head = conn.read_head()
        statuses.append(head.status)
        if head.status == 503:
            conn.read_body(head)
            assert conn.closed_by_server() == b""
            break
        # In flight: the app echoed the first chunk and waits for the rest of the body.
        assert conn.read_chunk() == b"a"
        held.append(conn)
    assert statuses[:2] == [200, 200] and statuses[-1] == 503, statuses
    for conn in held:
        conn.send(b"0\r\n\r\n")
        assert conn.read_chunk() == b""
    assert srv.http.get("/echo", headers={"x-rid": new_rid()}).status_code == 200
