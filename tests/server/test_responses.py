"""Response framing, bodiless responses, headers, trailers and pathsend."""

from __future__ import annotations

import email.utils
import os
from pathlib import Path
from typing import Any

from tests.server.conftest import Harness, dartle_only, new_rid, uvicorn_differs
from tests.server.rawhttp import RawConn, ServerClosed, request


def get(
    conn: RawConn,
    target: str,
    method: str = "GET",
    version: str = "HTTP/1.1",
    headers: list[tuple[str, str]] | None = None,
) -> Any:
    conn.send(request(method, target, [("X-Rid", new_rid()), *(headers or [])], version=version))
    return conn.read_response(method)


def assert_connection_still_in_sync(conn: RawConn) -> None:
    """A stray body byte from the previous response would break the next status line."""
    response = get(conn, "/echo?cl=1")
    assert response.status == 200 and response.body == b""


def assert_no_stray_bytes(conn: RawConn) -> None:
    """Like assert_connection_still_in_sync, but the server may also have closed cleanly."""
    try:
        assert_connection_still_in_sync(conn)
    except ServerClosed as closed:
        assert closed.partial == b"", "bytes after a bodiless response"
    except (BrokenPipeError, ConnectionResetError):
        pass


def test_content_length_given_by_the_app(server: Harness) -> None:
    conn = server.raw()
    response = get(conn, "/stream?chunks=3&size=5&cl=1")
    assert response.framing == "length"
    assert response.header("content-length") == "15"
    assert response.header("transfer-encoding") is None
    assert response.body == b"x" * 15
    assert_connection_still_in_sync(conn)


def test_chunked_when_no_length_and_several_body_messages(server: Harness) -> None:
    conn = server.raw()
    response = get(conn, "/stream?chunks=3&size=5")
    assert response.framing == "chunked"
    assert response.header("content-length") is None
    assert response.body == b"x" * 15
    assert_connection_still_in_sync(conn)


def test_single_body_message_without_length(server: Harness) -> None:
    conn = server.raw()
    response = get(conn, "/echo?cl=0")
    assert response.framing in ("length", "chunked")
    if response.framing == "length":
        assert response.header("content-length") == "0"
    response = get(conn, "/stream?chunks=1&size=11")
    assert response.framing in ("length", "chunked")
    assert response.body == b"x" * 11
    assert_connection_still_in_sync(conn)


@uvicorn_differs("sends chunked responses to HTTP/1.0 clients")
def test_http10_response_without_length_is_close_delimited(server: Harness) -> None:
    conn = server.raw()
    response = get(conn, "/stream?chunks=3&size=5", version="HTTP/1.0")
    assert response.header("transfer-encoding") is None, "HTTP/1.0 clients do not know chunked"
    assert response.body == b"x" * 15
    if response.framing == "close":
        assert conn.buffer == b""
    else:
        assert conn.closed_by_server() == b""


def test_head_gets_headers_only(server: Harness) -> None:
    conn = server.raw()
    response = get(conn, "/stream?chunks=3&size=5&cl=1", method="HEAD")
    assert response.status == 200
    assert response.header("content-length") == "15"
    assert_connection_still_in_sync(conn)
    response = get(conn, "/stream?chunks=3&size=5", method="HEAD")
    assert response.status == 200
    assert_connection_still_in_sync(conn)


def test_204_and_304_never_carry_a_body(server: Harness) -> None:
    conn = server.raw()
    for code in (204, 304):
        response = get(conn, f"/status?code={code}")
        assert response.status == code
        assert response.header("transfer-encoding") is None
        assert_no_stray_bytes(conn)
        conn = server.raw()
    response = get(conn, "/status?code=204")
    assert response.header("content-length") in (None, "0")


def test_app_transfer_encoding_is_ignored(server: Harness) -> None:
    conn = server.raw()
    response = get(conn, "/te?mode=chunked")
    assert response.status == 200
    assert response.body == b"abcdef", "the body was chunked twice, or not at all"
    assert len(response.all("transfer-encoding")) <= 1
    assert_connection_still_in_sync(conn)


@uvicorn_differs("writes both the app's Transfer-Encoding and Content-Length")
def test_app_transfer_encoding_with_content_length(server: Harness) -> None:
    conn = server.raw()
    response = get(conn, "/te?mode=both")
    assert response.status == 200
    framings = [response.header("transfer-encoding"), response.header("content-length")]
    assert framings.count(None) == 1, f"a response must not carry both framings: {response.headers}"
    assert response.body == b"abcdef"
    assert_connection_still_in_sync(conn)


def test_response_header_order_and_duplicates(server: Harness) -> None:
    conn = server.raw()
    response = get(conn, "/headers")
    own = [
        (k, v)
        for k, v in response.headers
        if k.startswith("x-") or k in ("set-cookie", "content-length")
    ]
    # the app's order, Content-Length included (ASGI: order MUST be preserved)
    assert own == [
        ("x-first", "1"),
        ("set-cookie", "a=1; Path=/"),
        ("x-mid", "2"),
        ("content-length", "2"),
        ("set-cookie", "b=2; Path=/"),
        ("x-last", "3"),
    ]
    assert response.body == b"ok"


def test_date_header(server: Harness) -> None:
    response = get(server.raw(), "/echo")
    date = response.header("date")
    assert date is not None
    assert date.endswith(" GMT")
    assert email.utils.parsedate_to_datetime(date) is not None


@dartle_only
def test_server_header_is_dartle(server: Harness) -> None:
    response = get(server.raw(), "/echo")
    assert response.header("server") == "dartle"


def test_no_date_and_no_server_header(start_server: Any) -> None:
    srv = start_server("--no-date-header", "--no-server-header")
    response = get(srv.raw(), "/echo")
    assert response.status == 200
    assert response.header("date") is None
    assert response.header("server") is None


def test_extra_event_keys_are_tolerated(server: Harness) -> None:
    response = server.http.get("/extra-keys", headers={"x-rid": new_rid()})
    assert response.status_code == 200 and response.content == b"fine"


def test_send_rule_violations_raise_from_send(server: Harness) -> None:
    rid = new_rid()
    response = server.http.get("/double-start", headers={"x-rid": rid})
    assert response.content == b"once"
    assert server.info(rid)["notes"]["raised"] is not None, "a second http.response.start was accepted"
    rid = new_rid()
    response = server.http.get("/body-first", headers={"x-rid": rid})
    assert server.wait(rid, "finished")["notes"]["raised"] is not None, "body before start accepted"
    assert response.status_code == 500


@dartle_only
def test_trailers_sent_when_the_client_accepts_them(server: Harness) -> None:
    conn = server.raw()
    response = get(conn, "/trailers", headers=[("TE", "trailers")])
    assert response.status == 200
    assert response.framing == "chunked"
    assert response.body == b"abcdef"
    assert response.trailers == [("x-checksum", "abcdef-ok")]
    assert_connection_still_in_sync(conn)


@dartle_only
def test_trailers_dropped_without_te_trailers(server: Harness) -> None:
    conn = server.raw()
    response = get(conn, "/trailers")
    assert response.status == 200
    assert response.body == b"abcdef"
    assert response.trailers == []
    assert response.header("x-checksum") is None
    assert_connection_still_in_sync(conn)


@dartle_only
def test_pathsend_sends_the_file(server: Harness, tmp_path: Path) -> None:
    data = os.urandom(700_000)
    path = tmp_path / "payload.bin"
    path.write_bytes(data)
    conn = server.raw()
    response = get(conn, f"/pathsend?path={path}")
    assert response.status == 200
    assert response.header("content-length") == str(len(data))
    assert response.body == data
    assert_connection_still_in_sync(conn)


def test_body_shorter_than_content_length_closes_the_connection(server: Harness) -> None:
    conn = server.raw()
    conn.send(request("GET", "/bad-length?declared=10&sent=5", [("X-Rid", new_rid())]))
    head = conn.read_head()
    if head.status == 500:  # the server may still replace a response it has not flushed
        return
    assert head.header("content-length") == "10"
    rest = conn.closed_by_server()
    assert len(rest) < 10, "the server cannot have completed a body the app never sent"


def test_body_longer_than_content_length_is_not_sent(server: Harness) -> None:
    conn = server.raw()
    conn.send(request("GET", "/bad-length?declared=5&sent=12", [("X-Rid", new_rid())]))
    head = conn.read_head()
    if head.status == 500:
        return
    assert head.header("content-length") == "5"
    try:
        body = conn.read_body(head).body
    except ServerClosed as closed:  # giving up on the broken response is fine
        assert len(closed.partial) < 5
        return
    assert body == b"b" * 5
    # The 7 extra bytes must not be taken for the start of the next response.
    assert_no_stray_bytes(conn)


@uvicorn_differs("closes the connection without any response")
def test_header_injection_is_not_written(server: Harness) -> None:
    rid = new_rid()
    conn = server.raw()
    conn.send(request("GET", "/inject", [("X-Rid", rid)]))
    response = conn.read_response()
    assert response.header("x-injected") is None, response.headers
    assert response.status == 500
    assert server.wait(rid, "finished")["notes"]["raised"] is not None, "CRLF in a header value"


def test_app_returning_after_start_only(server: Harness) -> None:
    """Start without any body: either a 500 (nothing was flushed) or a closed connection."""
    conn = server.raw()
    conn.send(request("GET", "/start-only", [("X-Rid", new_rid())]))
    try:
        head = conn.read_head()
    except ServerClosed as closed:
        assert closed.partial == b""
        return
    if head.status != 500:
        assert head.status == 200
        rest = conn.closed_by_server()
        assert not rest.endswith(b"0\r\n\r\n"), "an unfinished response must not look complete"


def test_large_response_body(server: Harness) -> None:
    response = server.http.get("/stream?chunks=128&size=65536", headers={"x-rid": new_rid()})
    assert response.status_code == 200
    assert len(response.content) == 128 * 65536


def test_body_after_the_response_completed_is_not_written(server: Harness) -> None:
    rid = new_rid()
    conn = server.raw()
    conn.send(request("GET", "/after-complete", [("X-Rid", rid)]))
    response = conn.read_response()
    assert response.body == b"complete"
    server.wait(rid, "finished")
    assert_no_stray_bytes(conn)


def test_unregistered_status_code(server: Harness) -> None:
    conn = server.raw()
    response = get(conn, "/stream?chunks=1&size=2&cl=1&status=299")
    assert response.status == 299 and response.body == b"xx"
    assert_connection_still_in_sync(conn)
