"""TrustedHostMiddleware and HTTPSRedirectMiddleware over real sockets (uvicorn and dartle).

Raw-socket requests send exactly the Host header under test (clients rewrite it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from dartle.web.middleware import HTTPSRedirectMiddleware, TrustedHostMiddleware
from dartle.web.middleware.trustedhost import host_without_port
from tests.server.rawhttp import RawConn, Response, request
from tests.support.servers import ServerProcess, run_server
from tests.web.apps.mw_common import echo

Serve = Callable[[str], ServerProcess]


@pytest.fixture(scope="module", params=["uvicorn", "dartle"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def serve(kind: str) -> Iterator[Serve]:
    servers: dict[str, ServerProcess] = {}
    with contextlib.ExitStack() as stack:

        def get(name: str) -> ServerProcess:
            if name not in servers:
                servers[name] = stack.enter_context(run_server(f"tests.web.apps.mw_hosts:{name}", kind=kind))
            return servers[name]

        yield get


def fetch(server: ServerProcess, target: str, host: str | None, method: str = "GET") -> Response:
    conn = RawConn.tcp(server.host, server.port)
    try:
        headers = [("Connection", "close")]
        if host is not None:
            headers.insert(0, ("Host", host))
        data = request(method, target, headers)
        if host is None:  # request() adds a Host; take it out again
            data = data.replace(b"Host: 127.0.0.1\r\n", b"")
        conn.send(data)
        return conn.read_response(method)
    finally:
        conn.close()


# -- TrustedHostMiddleware --------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["example.com", "EXAMPLE.com:8000", "example.com.", "api.example.org", "a.b.example.org:1", "[::1]:80"],
)
def test_allowed_hosts_reach_the_app(serve: Serve, host: str) -> None:
    response = fetch(serve("trusted"), "/json", host)
    assert response.status == 200
    assert response.json()["headers"]["host"] == host


@pytest.mark.parametrize(
    "host",
    [
        "evil.com",
        "example.org",  # "*.example.org" is for subdomains only
        "notexample.com",
        "example.com.evil.com",
        "evilexample.org",
        "example.com:abc",
        "[::1",
        "",
    ],
)
def test_other_hosts_are_refused(serve: Serve, host: str) -> None:
    response = fetch(serve("trusted"), "/json", host)
    assert response.status == 400
    # A malformed Host ("example.com:abc", "[::1") may already be refused by the server
    # (RFC 9112 3.2: 400 for an invalid Host), before the middleware sees it.
    assert response.body == b"Invalid host header" or response.body.startswith(b"Bad request")


def test_missing_host_is_refused(serve: Serve) -> None:
    conn = RawConn.tcp(serve("trusted").host, serve("trusted").port)
    try:
        conn.send(b"GET /json HTTP/1.0\r\n\r\n")
        response = conn.read_response()
    finally:
        conn.close()
    assert response.status == 400


def test_www_redirect(serve: Serve) -> None:
    response = fetch(serve("trusted"), "/json?a=1", "redirect.test:8000")
    assert response.status == 301
    assert response.header("location") == "http://www.redirect.test:8000/json?a=1"
    refused = fetch(serve("trusted_no_www"), "/json", "redirect.test")
    assert refused.status == 400


def handshake(server: ServerProcess, host: str, target: str = "/ws") -> Response:
    """A WebSocket opening handshake with exactly this Host; the server's answer head."""
    conn = RawConn.tcp(server.host, server.port)
    try:
        conn.send(
            request(
                "GET",
                target,
                [
                    ("Host", host),
                    ("Upgrade", "websocket"),
                    ("Connection", "Upgrade"),
                    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                    ("Sec-WebSocket-Version", "13"),
                ],
            )
        )
        return conn.read_head()
    finally:
        conn.close()


def test_websocket_with_bad_host_is_refused(serve: Serve, kind: str) -> None:
    server = serve("trusted")
    assert handshake(server, "example.com").status == 101
    refused = handshake(server, "evil.com")
    # 400 where the server can answer a handshake with an HTTP response (the
    # websocket.http.response extension, which uvicorn has), else the 403 of a close
    # before accept.
    assert refused.status in ((400,) if kind == "uvicorn" else (400, 403))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Example.COM:8000", "example.com"),
        ("[::1]:8000", "[::1]"),
        ("[::1]", "[::1]"),
        ("example.com.", "example.com"),
        ("a b", ""),
        ("[::1]x", ""),
        ("example.com:80:80", ""),
        ("user@example.com", ""),
    ],
)
def test_host_without_port(value: str, expected: str) -> None:
    assert host_without_port(value) == expected


def test_bad_patterns_are_refused_at_startup() -> None:
    with pytest.raises(ValueError):
        TrustedHostMiddleware(echo, allowed_hosts=["ex*ample.com"])
    with pytest.raises(TypeError):
        TrustedHostMiddleware(echo, allowed_hosts="example.com")  # type: ignore[arg-type]


# -- HTTPSRedirectMiddleware ------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "target", "location"),
    [
        ("example.com", "/json?x=1&y=%20", "https://example.com/json?x=1&y=%20"),
        ("example.com:80", "/a%2Fb", "https://example.com/a%2Fb"),
        ("example.com:8080", "/", "https://example.com:8080/"),
        ("[::1]:8000", "/p", "https://[::1]:8000/p"),
    ],
)
def test_http_is_redirected_to_https(serve: Serve, host: str, target: str, location: str) -> None:
    for method in ("GET", "POST"):
        response = fetch(serve("https"), target, host, method)
        assert response.status == 307
        assert response.header("location") == location


def test_permanent_redirect_to_another_port(serve: Serve) -> None:
    response = fetch(serve("https_permanent"), "/json", "example.com:8000")
    assert response.status == 308
    assert response.header("location") == "https://example.com:8443/json"


def test_websocket_is_sent_to_wss(serve: Serve, kind: str) -> None:
    response = handshake(serve("https"), "example.com:8000", "/ws?q=1")
    if kind == "uvicorn" or response.status == 307:
        assert response.status == 307
        assert response.header("location") == "wss://example.com:8000/ws?q=1"
    else:  # a server without the websocket.http.response extension
        assert response.status == 403


def test_bad_redirect_status_is_refused_at_startup() -> None:
    with pytest.raises(ValueError):
        HTTPSRedirectMiddleware(echo, status_code=200)
