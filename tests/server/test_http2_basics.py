"""HTTP/2 streams as ASGI requests: the scope, bodies, responses and errors, on both loops.

The server is reached by prior knowledge (h2c) with the h2 library as a raw client and
with httpx; every stream is a Cycle with the same ASGI rules as an HTTP/1.1 request.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import httpx
import pytest

from tests.server import h2fixtures
from tests.server.asgi_json import decode
from tests.server.conftest import new_rid
from tests.server.h2client import Closed, Response, raw_frame
from tests.server.h2fixtures import H2Harness, dartle_only

pytestmark = dartle_only

# the HTTP/2 fixtures (h2fixtures.py), under the names the tests ask for
h2_server = h2fixtures.h2_server
h2_shared = h2fixtures.h2_shared
start_h2 = h2fixtures.start_h2

DATA, RST_STREAM = 0x0, 0x3
END_STREAM = 0x1
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
REFUSED_STREAM = 0x7
NO_ERROR = 0x0


def scope_of(response: Response) -> dict[str, Any]:
    assert response.status == 200, (response.status, response.body)
    return dict(decode(response.json()))


def test_scope_fields(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    response = client.get("/scope/caf%C3%A9%20x?a=1&b=%20c", [("x-custom", "v1"), ("x-rid", new_rid())])
    scope = scope_of(response)
    assert scope["type"] == "http"
    assert scope["http_version"] == "2"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/scope/café x"
    assert scope["raw_path"] == b"/scope/caf%C3%A9%20x"
    assert scope["query_string"] == b"a=1&b=%20c"
    assert scope["server"] == ["127.0.0.1", h2_server.port]
    assert scope["client"] == ["127.0.0.1", client.sock.getsockname()[1]]
    names = [name for name, _ in scope["headers"]]
    assert not any(name.startswith(b":") for name in names), "pseudo-headers must be removed"
    assert scope["headers"][0] == [b"host", f"127.0.0.1:{h2_server.port}".encode()]
    assert [b"x-custom", b"v1"] in scope["headers"]
    extensions = scope["extensions"]
    assert {"http.response.trailers", "http.response.pathsend", "http.response.early_hint"} <= set(extensions)
    assert scope["state"]["greeting"] == "hello"


def test_authority_replaces_host(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    authority = f"127.0.0.1:{h2_server.port}"
    scope = scope_of(client.get("/scope", [("x-a", "1"), ("host", authority), ("x-b", "2")]))
    hosts = [header for header in scope["headers"] if header[0] == b"host"]
    assert hosts == [[b"host", authority.encode()]]
    assert scope["headers"][0][0] == b"host"
    # a Host that names another authority than :authority makes the request malformed
    sid = client.request("GET", "/scope", [("host", "elsewhere.example")])
    assert client.response(sid).reset == PROTOCOL_ERROR


def test_cookie_crumbs_are_joined(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    scope = scope_of(client.get("/scope", [("cookie", "a=1"), ("x-mid", "m"), ("cookie", "b=2")]))
    cookies = [value for name, value in scope["headers"] if name == b"cookie"]
    assert cookies == [b"a=1; b=2"]


def test_header_values_and_order_are_kept(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    scope = scope_of(client.get("/scope", [("x-dup", "1"), ("x-other", "a, b"), ("x-dup", "2")]))
    regular = [h for h in scope["headers"] if h[0].startswith(b"x-")]
    assert regular == [[b"x-dup", b"1"], [b"x-other", b"a, b"], [b"x-dup", b"2"]]


@pytest.mark.parametrize("size", [0, 5, 70_000, 1_500_000])
def test_request_body_echo(h2_server: H2Harness, size: int) -> None:
    client = h2_server.h2()
    body = os.urandom(size)
    sid = client.request("POST", "/echo", [("content-length", str(size))], end=False)
    client.send_all(sid, body)
    response = client.response(sid, timeout=30)
    assert response.status == 200
    assert response.body == body


def test_body_without_content_length_streams_in_chunks(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    rid = new_rid()
    sid = client.request("POST", f"/echo?rid={rid}", end=False)
    client.send_all(sid, b"a" * 100, end=False)
    h2_server.wait(rid, "events:1")
    client.send_all(sid, b"b" * 100, end=True)
    response = client.response(sid)
    assert response.body == b"a" * 100 + b"b" * 100
    events = h2_server.info(rid)["events"]
    assert events[0]["more_body"] is True
    assert events[-1]["more_body"] is False
    assert sum(event["len"] for event in events) == 200


def test_many_concurrent_streams(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    sids = {}
    for index in range(100):
        body = f"stream-{index}".encode() * 50
        sid = client.request("POST", "/echo", [("content-length", str(len(body)))], body=body)
        sids[sid] = body
    for sid, body in sids.items():
        assert client.response(sid).body == body


def test_httpx_prior_knowledge(h2_server: H2Harness) -> None:
    with httpx.Client(http1=False, http2=True, base_url=h2_server.url, timeout=10) as http:
        responses = [http.post("/echo", content=f"body {i}".encode()) for i in range(5)]
        scope = decode(http.get("/scope").json())
    assert [r.http_version for r in responses] == ["HTTP/2"] * 5
    assert [r.text for r in responses] == [f"body {i}" for i in range(5)]
    assert scope["http_version"] == "2"


def test_response_headers_keep_order_and_duplicates(h2_server: H2Harness) -> None:
    response = h2_server.h2().get("/headers")
    assert response.status == 200
    app_headers = [(k, v) for k, v in response.headers if k not in (":status", "date", "server")]
    assert app_headers == [
        ("x-first", "1"), ("set-cookie", "a=1; Path=/"), ("x-mid", "2"), ("content-length", "2"),
        ("set-cookie", "b=2; Path=/"), ("x-last", "3"),
    ]
    assert response.body == b"ok"


def test_app_transfer_encoding_is_dropped(h2_server: H2Harness) -> None:
    response = h2_server.h2().get("/te")
    assert response.header("transfer-encoding") is None
    assert response.body == b"abcdef"


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/status?code=204", 204),
    ("GET", "/status?code=304", 304),
    ("HEAD", "/headers", 200),
])
def test_responses_without_body(h2_server: H2Harness, method: str, path: str, status: int) -> None:
    client = h2_server.h2()
    response = client.response(client.request(method, path))
    assert response.status == status
    assert response.body == b""
    if method == "HEAD":
        assert response.header("content-length") == "2"
    if status == 204:
        assert response.header("content-length") is None


def test_app_exception_before_response_is_500(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    response = client.get(f"/raise?when=before&rid={new_rid()}")
    assert response.status == 500
    assert response.body == b"Internal Server Error\n"
    assert client.get("/scope").status == 200  # the connection goes on


def test_app_exception_after_start_resets_the_stream(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    response = client.get(f"/raise?when=after&rid={new_rid()}")
    assert response.status == 200
    assert response.body == b"partial"
    assert response.reset == INTERNAL_ERROR
    assert client.get("/scope").status == 200


def test_body_shorter_than_content_length_resets(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    response = client.get("/bad-length?declared=10&sent=5")
    assert response.reset == INTERNAL_ERROR
    assert client.get("/scope").status == 200


def test_send_after_response_is_ignored(h2_server: H2Harness) -> None:
    rid = new_rid()
    response = h2_server.h2().get(f"/after-complete?rid={rid}")
    assert response.body == b"complete"
    record = h2_server.wait(rid, "note:raised")
    assert record["notes"]["raised"] is None


def test_receive_after_response_gives_disconnect(h2_server: H2Harness) -> None:
    rid = new_rid()
    assert h2_server.h2().get(f"/after-response?rid={rid}").body == b"done"
    record = h2_server.wait(rid, "disconnect")
    assert "receive_after_response" not in record["notes"]


@pytest.mark.parametrize(("fields", "why"), [
    ([("X-Upper", "1")], "uppercase field name"),
    ([("connection", "keep-alive")], "connection-specific field"),
    ([("transfer-encoding", "chunked")], "connection-specific field"),
    ([("te", "gzip")], "TE other than trailers"),
    ([("x-bad", " leading space")], "whitespace around a value"),
])
def test_malformed_requests_reset_the_stream(
    h2_server: H2Harness, fields: list[tuple[str, str]], why: str
) -> None:
    client = h2_server.h2()
    sid = client.request("GET", "/scope", fields)
    assert client.response(sid).reset == PROTOCOL_ERROR, why
    assert client.get("/scope").status == 200, "a stream error leaves the connection usable"


def test_missing_pseudo_headers_reset_the_stream(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    sid = client.conn.get_next_available_stream_id()
    client.conn.send_headers(sid, [(":method", "GET"), (":scheme", "http")], end_stream=True)
    client.flush()
    assert client.response(sid).reset == PROTOCOL_ERROR
    sid = client.conn.get_next_available_stream_id()
    fields = [(":method", "GET"), ("x-a", "1"), (":path", "/"), (":scheme", "http")]
    client.conn.send_headers(sid, fields, end_stream=True)
    client.flush()
    assert client.response(sid).reset == PROTOCOL_ERROR  # pseudo-header after a regular one


def test_content_length_mismatch_resets(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    sid = client.request("POST", "/echo", [("content-length", "10")], body=b"12345")
    assert client.response(sid).reset == PROTOCOL_ERROR


def test_header_list_over_the_limit_gets_431(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    response = client.get("/scope", [("x-big", "a" * 40_000)])
    assert response.status == 431
    assert client.get("/scope").status == 200, "the connection goes on"


def test_expect_100_continue(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    sid = client.request("POST", "/echo", [("expect", "100-continue"), ("content-length", "5")], end=False)
    client.read_until(lambda: any(getattr(e, "headers", None) for e in client.stream_events(sid)))
    first = Response.of(client.stream_events(sid))
    assert [dict(h)[":status"] for h in first.informational] == ["100"]
    client.send_all(sid, b"hello")
    assert client.response(sid).body == b"hello"


def test_body_limit_gives_413(start_h2: Any, loop: str) -> None:
    server = start_h2("--loop", loop, "--max-body-size", "1000")
    client = server.h2()
    sid = client.request("POST", "/echo", [("content-length", "5000")], end=False)
    assert client.response(sid).status == 413
    rid = new_rid()
    sid = client.request("POST", f"/late-read?rid={rid}", end=False)  # no length: counted
    client.send_all(sid, b"x" * 5000)
    assert client.response(sid).status == 413
    assert client.get("/scope").status == 200
    server.release(rid)
    if server.info(rid)["scope"] is not None:
        # the app had started before the body went over: it reads, finds the client gone
        assert server.wait(rid, "finished")["events"][-1]["type"] == "http.disconnect"
    # (else the whole body came in the read that opened the stream: no app was called)


def test_limit_concurrency_gives_503(start_h2: Any, loop: str) -> None:
    server = start_h2("--loop", loop, "--limit-concurrency", "1")
    client = server.h2()
    busy = client.request("POST", "/slow-echo", end=False)
    client.send_all(busy, b"first ", end=False)
    client.read_until(lambda: any(getattr(e, "data", None) for e in client.stream_events(busy)))
    assert client.get("/scope").status == 503  # the echo's app is still running
    client.send_all(busy, b"done")
    assert client.response(busy).body == b"first done"
    assert client.get("/scope").status == 200


def test_access_log_line(h2_server: H2Harness) -> None:
    mark = h2_server.log_mark()
    rid = new_rid()
    h2_server.h2().get(f"/scope/logged?rid={rid}")
    h2_server.wait_for_log(rf'"GET /scope/logged\?rid={rid} HTTP/2" 200', mark)


def test_graceful_shutdown_sends_goaway_and_finishes_streams(start_h2: Any, loop: str) -> None:
    server = start_h2("--loop", loop)
    client = server.h2()
    open_sid = client.request("POST", "/slow-echo", end=False)
    client.send_all(open_sid, b"first ", end=False)
    client.read_until(lambda: any(getattr(e, "data", None) for e in client.stream_events(open_sid)))
    server.process.proc.send_signal(signal.SIGTERM)
    goaway = client.wait_goaway()
    assert goaway.error_code == NO_ERROR
    assert goaway.last_stream_id == open_sid
    # The h2 library sends nothing after a GOAWAY: raw frames from here on.
    late = open_sid + 2
    client.send_headers_raw(late, [(":method", "GET"), (":path", "/scope"), (":scheme", "http"),
                                   (":authority", "localhost")])
    frames = client.read_raw_until(lambda fs: any(f.type == RST_STREAM and f.stream_id == late for f in fs))
    rst = next(f for f in frames if f.type == RST_STREAM and f.stream_id == late)
    assert int.from_bytes(rst.payload, "big") == REFUSED_STREAM
    client.send_raw(raw_frame(DATA, END_STREAM, open_sid, b"second"))
    frames = client.read_raw_until(
        lambda fs: any(f.type == DATA and f.stream_id == open_sid and f.flags & END_STREAM for f in fs)
    )
    body = b"".join(f.payload for f in frames if f.type == DATA and f.stream_id == open_sid)
    assert body == b"first second"
    with pytest.raises(Closed):
        client.read_raw_until(lambda fs: False)
    assert server.process.proc.wait(10) == 0


def test_proxy_headers_from_a_trusted_peer(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    headers = [("x-forwarded-for", "203.0.113.7"), ("x-forwarded-proto", "https")]
    scope = scope_of(client.get("/scope", headers))
    assert scope["client"] == ["203.0.113.7", 0]
    assert scope["scheme"] == "https"


def test_root_path(start_h2: Any, loop: str) -> None:
    server = start_h2("--loop", loop, "--root-path", "/api")
    scope = scope_of(server.h2().get("/scope/x?q=1"))
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/scope/x"
    assert scope["raw_path"] == b"/api/scope/x"


def test_plain_connect_is_not_supported(h2_server: H2Harness) -> None:
    client = h2_server.h2()
    sid = client.conn.get_next_available_stream_id()
    client.conn.send_headers(sid, [(":method", "CONNECT"), (":authority", "example.com:443")])
    client.flush()
    response = client.response(sid)
    assert response.status == 501
    assert client.get("/scope").status == 200
