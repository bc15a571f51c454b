"""Request bodies: Content-Length and chunked, streamed to the app, 100-continue, backpressure."""

from __future__ import annotations

import os

from tests.server.conftest import Harness, new_rid, rss_kib
from tests.server.rawhttp import ServerClosed, chunked, request
from tests.server.test_connections import _flood


def test_content_length_body_with_httpx(server: Harness) -> None:
    body = os.urandom(300_000)
    response = server.http.post("/echo", content=body, headers={"x-rid": new_rid()})
    assert response.status_code == 200
    assert response.content == body


def test_chunked_body_is_dechunked(server: Harness) -> None:
    rid = new_rid()
    conn = server.raw()
    conn.send(
        request("POST", "/echo", [("X-Rid", rid), ("Transfer-Encoding", "chunked")])
        + chunked(b"hello ", b"chunked ", b"world")
    )
    response = conn.read_response()
    assert response.status == 200
    assert response.body == b"hello chunked world"
    events = server.info(rid)["events"]
    assert events[-1]["more_body"] is False
    assert all(event["type"] == "http.request" for event in events)
    assert "".join(event["body"] for event in events) == "hello chunked world"


def test_chunked_body_with_extensions_and_trailers(server: Harness) -> None:
    conn = server.raw()
    conn.send(
        request("POST", "/echo", [("X-Rid", new_rid()), ("Transfer-Encoding", "chunked")])
        + b"5;name=value\r\nhello\r\n0\r\nX-Trailer: yes\r\n\r\n"
    )
    response = conn.read_response()
    assert response.status == 200 and response.body == b"hello"


def test_empty_body_still_gives_one_request_event(server: Harness) -> None:
    rid = new_rid()
    assert server.http.get("/echo", headers={"x-rid": rid}).content == b""
    events = server.info(rid)["events"]
    assert events[0] == {"type": "http.request", "len": 0, "more_body": False, "body": ""}


def test_content_length_body_streams_before_it_is_complete(server: Harness) -> None:
    rid = new_rid()
    conn = server.raw()
    conn.send(request("POST", "/slow-echo", [("X-Rid", rid), ("Content-Length", "10")]) + b"first")
    head = conn.read_head()
    assert head.status == 200
    # The app echoed the first five bytes while the client still holds back the rest.
    assert conn.read_chunk() == b"first"
    assert server.info(rid)["events"][0] == {
        "type": "http.request",
        "len": 5,
        "more_body": True,
        "body": "first",
    }
    conn.send(b"secnd")
    assert conn.read_chunk() == b"secnd"
    assert conn.read_chunk() == b""
    events = server.info(rid)["events"]
    assert events[-1]["more_body"] is False
    assert sum(event["len"] for event in events) == 10


def test_chunked_body_streams_before_it_is_complete(server: Harness) -> None:
    rid = new_rid()
    conn = server.raw()
    conn.send(
        request("POST", "/slow-echo", [("X-Rid", rid), ("Transfer-Encoding", "chunked")]) + b"6\r\nfirst!\r\n"
    )
    assert conn.read_head().status == 200
    assert conn.read_chunk() == b"first!"
    conn.send(b"7\r\nsecond!\r\n0\r\n\r\n")
    assert conn.read_chunk() == b"second!"
    assert conn.read_chunk() == b""
    assert conn.read_trailers() == []


def test_expect_100_continue_when_the_app_reads(server: Harness) -> None:
    conn = server.raw()
    conn.send(
        request("POST", "/echo", [("X-Rid", new_rid()), ("Expect", "100-continue"), ("Content-Length", "5")])
    )
    interim = conn.read_response()
    assert interim.status == 100
    conn.send(b"hello")
    final = conn.read_response()
    assert final.status == 200 and final.body == b"hello"


def test_100_continue_waits_for_the_first_receive(server: Harness) -> None:
    rid = new_rid()
    conn = server.raw()
    headers = [("X-Rid", rid), ("Expect", "100-continue"), ("Content-Length", "4")]
    conn.send(request("POST", "/late-read", headers))
    server.wait(rid, "seen")  # the app runs, but has not called receive() yet
    assert not conn.readable(0.1), f"sent before the app asked for the body: {conn.buffer!r}"
    server.release(rid)
    assert conn.read_response().status == 100
    conn.send(b"late")
    assert conn.read_response().body == b"late"


def test_no_100_continue_when_the_app_answers_without_reading(server: Harness) -> None:
    conn = server.raw()
    conn.send(
        request(
            "POST",
            "/stream?chunks=1&size=3",
            [("X-Rid", new_rid()), ("Expect", "100-continue"), ("Content-Length", "5")],
        )
    )
    response = conn.read_response()
    assert response.status == 200, "100 Continue sent although the app never called receive()"
    assert response.body == b"xxx"


def test_expect_100_continue_with_httpx_style_body(server: Harness) -> None:
    # A client that does not wait for 100 Continue sends the body at once; that must work too.
    conn = server.raw()
    conn.send(request("POST", "/echo", [("X-Rid", new_rid()), ("Expect", "100-continue")], body=b"eager"))
    first = conn.read_response()
    if first.status == 100:
        first = conn.read_response()
    assert first.status == 200 and first.body == b"eager"


def test_reading_pauses_while_the_app_does_not_take_the_body(server: Harness) -> None:
    pid = server.pid()
    rid = new_rid()
    conn = server.raw()
    total = 1024 * 1024 * 1024
    conn.send(request("POST", "/hold", [("X-Rid", rid), ("Content-Length", str(total))]) + b"x")
    server.wait(rid, "events:1")
    before = rss_kib(pid)
    sent = _flood(conn.sock, b"x" * 65536, 256 * 1024 * 1024)
    grown = rss_kib(pid) - before
    assert sent < 64 * 1024 * 1024, f"server kept reading {sent} body bytes the app did not take"
    assert grown < 64 * 1024, f"server RSS grew by {grown} KiB"
    conn.close()
    server.release(rid)
    record = server.wait(rid, "finished")
    assert record["events"][-1]["type"] == "http.disconnect"
    assert sum(event.get("len", 0) for event in record["events"]) < total


def test_large_chunked_upload_survives_pause_and_resume(server: Harness) -> None:
    pieces = [os.urandom(128 * 1024) for _ in range(64)]
    response = server.http.post("/echo", content=iter(pieces), headers={"x-rid": new_rid()})
    assert response.status_code == 200
    assert response.content == b"".join(pieces)


def test_unread_body_is_never_taken_for_a_request(server: Harness) -> None:
    marker = new_rid("inner")
    inner = request("GET", f"/{marker}", [("X-Rid", marker)])
    conn = server.raw()
    # The app answers without reading the body, which happens to look like a request.
    conn.send(request("POST", "/stream?chunks=1&size=3", [("X-Rid", new_rid())], body=inner))
    assert conn.read_response().body == b"xxx"
    try:
        conn.send(request("GET", "/echo", [("X-Rid", new_rid())]))
        follow_up = conn.read_response()
        assert follow_up.status == 200 and follow_up.body == b""
    except ServerClosed as closed:
        assert closed.partial == b""  # closing instead of draining the body is fine too
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert not [line for line in server.seen() if marker in line], "the body ran as a request"


def test_receive_after_the_body_waits_for_disconnect(server: Harness) -> None:
    rid = new_rid()
    conn = server.raw()
    conn.send(request("POST", "/wait-disconnect", [("X-Rid", rid)], body=b"abc"))
    record = server.wait(rid, "note:second-receive")
    assert [event["type"] for event in record["events"]] == ["http.request"]
    conn.close()
    record = server.wait(rid, "finished")
    assert [event["type"] for event in record["events"]] == ["http.request", "http.disconnect"]
