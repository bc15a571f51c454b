"""Third-party apps on the dartle server give what uvicorn gives, over real sockets.

Each app (Starlette, FastAPI, Django ASGI, Quart, Litestar, and the WSGI apps Flask and
Django's WSGIHandler) is served by dartle and by uvicorn, both from tests/interop/.venv;
the same requests go to both, and status, headers (apart from Date and Server) and body
must match. dartle detects the WSGI apps by itself; uvicorn is told `--interface wsgi`.
Each case also states what the right answer is, so two servers failing alike still fail.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.interop.conftest import serve
from tests.support.servers import ServerProcess

APPS = {
    "starlette": ("tests.interop.apps.starlette_app:app", False),
    "fastapi": ("tests.interop.apps.fastapi_app:app", False),
    "django-asgi": ("tests.interop.apps.django_app:asgi_app", False),
    "quart": ("tests.interop.apps.quart_app:app", False),
    "litestar": ("tests.interop.apps.litestar_app:app", False),
    "flask-wsgi": ("tests.interop.apps.flask_app:app", True),
    "django-wsgi": ("tests.interop.apps.django_app:wsgi_app", True),
}

BIG = bytes(range(256)) * 4096  # 1 MiB


def _chunks() -> Iterator[bytes]:
    for start in range(0, len(BIG), 65536):
        yield BIG[start:start + 65536]


@dataclass
class Case:
    method: str
    path: str
    status: int | dict[str, int]  # one for all apps, or per app with "*" as the default
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: Any = b""  # bytes, or a callable giving an iterator (a chunked upload)
    expect: Any = None  # a predicate on dartle's response, beyond equality with uvicorn's


def _json_has(**wanted: Any) -> Any:
    return lambda r: all(r.json()[key] == value for key, value in wanted.items())


def _text_is(text: str) -> Any:
    return lambda r: r.text == text


CASES = {
    "hello": Case("GET", "/", 200, expect=_text_is("Hello, world!")),
    # FastAPI and Litestar do not answer HEAD on GET routes
    "head": Case("HEAD", "/", {"*": 200, "fastapi": 405, "litestar": 405}, expect=_text_is("")),
    "query": Case("GET", "/json?a=1&b=x%20y", 200, expect=_json_has(query={"a": "1", "b": "x y"})),
    "upload": Case("POST", "/echo", 200, [("content-type", "application/octet-stream")], BIG,
                   expect=_json_has(length=len(BIG), sha256=hashlib.sha256(BIG).hexdigest())),
    # Django reads no body without Content-Length; the others read a chunked body to its end
    "chunked-upload": Case("POST", "/echo", 200, [("content-type", "application/octet-stream")], _chunks,
                           expect=lambda r: r.json()["length"] in (0, len(BIG))),
    "repeated-header": Case("GET", "/headers", 200, [("x-test", "one"), ("x-test", "two")]),
    "cookies": Case("GET", "/cookies", 200, expect=lambda r: len(r.headers.get_list("set-cookie")) == 2),
    "redirect": Case("GET", "/redirect", 302, expect=lambda r: r.headers["location"].endswith("/")),
    "stream": Case("GET", "/stream", 200, expect=_text_is("0\n1\n2\n3\n4\n")),
    "error": Case("GET", "/error", 500),
    "missing": Case("GET", "/missing", 404),
    "encoded-path": Case("GET", "/path/caf%C3%A9/x%20y", 200,
                         expect=lambda r: r.json()["param"].endswith("café/x y")),
    "client": Case("GET", "/client", 200, expect=_json_has(client="127.0.0.1", scheme="http")),
}
FASTAPI_CASES = {
    "model": Case("POST", "/items", 200, [("content-type", "application/json")],
                  b'{"name": "pen", "price": 2.5}', expect=_json_has(with_tax=3.0)),
    "invalid-model": Case("POST", "/items", 422, [("content-type", "application/json")], b'{"name": "pen"}',
                          expect=lambda r: r.json()["detail"][0]["loc"] == ["body", "price"]),
}


# Where dartle and uvicorn differ on purpose: (app, case) -> why, and uvicorn's answer.
KNOWN_DIFFERENCES: dict[tuple[str, str], tuple[str, Any]] = {
    ("flask-wsgi", "chunked-upload"): (
        "uvicorn --interface wsgi (through a2wsgi 1.10, installed here) does not set "
        "wsgi.input_terminated, so Flask reads a chunked body as empty; dartle's bridge "
        "sets it and Flask gets the whole body",
        lambda r: r.json()["length"] == 0,
    ),
}
FRAMING = frozenset(("transfer-encoding", "connection", "keep-alive"))


Servers = tuple[str, ServerProcess, ServerProcess]


@contextlib.contextmanager
def _side_by_side(python: Path, app: str) -> Iterator[Servers]:
    """The app on dartle (interface detected) and on uvicorn."""
    target, wsgi = APPS[app]
    uvicorn_flags = ("--interface", "wsgi") if wsgi else ()
    with serve(python, "dartle", target, "--no-access-log") as dartle, \
            serve(python, "uvicorn", target, "--no-access-log", *uvicorn_flags) as uvicorn:
        yield app, dartle, uvicorn


@pytest.fixture(scope="module", params=list(APPS))
def servers(request: pytest.FixtureRequest, interop_python: Path) -> Iterator[Servers]:
    with _side_by_side(interop_python, request.param) as pair:
        yield pair


@pytest.fixture(scope="module")
def fastapi_servers(interop_python: Path) -> Iterator[Servers]:
    with _side_by_side(interop_python, "fastapi") as pair:
        yield pair


def _fetch(server: ServerProcess, case: Case) -> httpx.Response:
    content = case.body() if callable(case.body) else case.body
    with httpx.Client(base_url=server.url, timeout=30) as client:
        return client.request(case.method, case.path, headers=case.headers, content=content or None)


def _normalised(response: httpx.Response, server: ServerProcess) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body, with this server's address and Date/Server left out.

    Headers are compared as HTTP defines them (RFC 9110 5.3): the order of the values of
    one field name matters, the relative order of different names does not (dartle
    writes Content-Length last). Framing is the server's choice (ASGI: a response without
    Content-Length "may be chunked as the server sees fit"; dartle gives a body sent in
    one message a Content-Length): both are reduced to the length of the body delivered,
    and Connection (dartle closes after an app that left request body unread) is left out.
    """
    here = f"127.0.0.1:{server.port}"
    headers = [(name.lower(), value.replace(here, "HOST")) for name, value in response.headers.multi_items()
               if name.lower() not in ("date", "server") and name.lower() not in FRAMING]
    if response.request.method != "HEAD":
        headers = [item for item in headers if item[0] != "content-length"]
        headers.append(("content-length", str(len(response.content))))
    headers.sort(key=lambda item: item[0])  # stable: values of one name keep their order
    return response.status_code, headers, response.content.replace(here.encode(), b"HOST")


@pytest.mark.parametrize("name", list(CASES))
def test_same_answer_as_uvicorn(servers: Servers, name: str) -> None:
    _compare(servers, CASES[name], name)


@pytest.mark.parametrize("name", list(FASTAPI_CASES))
def test_fastapi_models_same_answer_as_uvicorn(fastapi_servers: Servers, name: str) -> None:
    _compare(fastapi_servers, FASTAPI_CASES[name], name)


def _compare(servers: Servers, case: Case, name: str) -> None:
    app, dartle, uvicorn = servers
    ours = _fetch(dartle, case)
    theirs = _fetch(uvicorn, case)
    status = case.status if isinstance(case.status, int) else case.status.get(app, case.status["*"])
    assert ours.status_code == status, ours.text[:500]
    if case.expect is not None:
        assert case.expect(ours), f"{name}: {ours.headers} {ours.text[:500]}"
    known = KNOWN_DIFFERENCES.get((app, name))
    if known is not None:
        why, uvicorn_answer = known
        assert uvicorn_answer(theirs), f"uvicorn no longer differs ({why}): {theirs.text[:300]}"
        return
    assert _normalised(ours, dartle) == _normalised(theirs, uvicorn)


def _ws_session(server: ServerProcess) -> list[Any]:
    """One WebSocket conversation with the FastAPI echo route; what the client saw."""
    seen: list[Any] = []
    url = server.url.replace("http://", "ws://") + "/ws"
    with connect(url, subprotocols=["chat"], open_timeout=10) as ws:  # type: ignore[list-item]
        seen.append(ws.subprotocol)
        ws.send("hi")
        seen.append(ws.recv(timeout=10))
        ws.send(b"abc")
        seen.append(ws.recv(timeout=10))
        ws.send("close")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        rcvd = closed.value.rcvd
        seen.append((rcvd.code, rcvd.reason) if rcvd else None)
    return seen


EXPECTED_WS = ["chat", "echo: hi", b"cba", (4001, "asked to close")]


@pytest.mark.parametrize("kind", ["uvicorn", "dartle"])
def test_fastapi_websocket_route(interop_python: Path, kind: str) -> None:
    with serve(interop_python, kind, "tests.interop.apps.fastapi_app:app") as server:
        assert _ws_session(server) == EXPECTED_WS


# Frameworks that break an ASGI rule on every response: app -> (rule, detail in the log)
STRICT_VIOLATIONS = {
    "django-asgi": ("headers.lowercase", "http.response.start headers: b'Content-Type'"),
}


@pytest.mark.parametrize("app", list(APPS))
def test_frameworks_under_strict_asgi(interop_python: Path, app: str) -> None:
    """--strict-asgi finds nothing wrong with the frameworks (or with our WSGI bridge),
    except Django's ASGI handler, whose response header names are not lowercased."""
    target, _ = APPS[app]
    with serve(interop_python, "dartle", target, "--strict-asgi", "--no-access-log") as server:
        statuses = {name: _fetch(server, case).status_code for name, case in CASES.items()}
        log = server.read_log(0.2).decode(errors="replace")
    if app in STRICT_VIOLATIONS:
        rule, detail = STRICT_VIOLATIONS[app]
        assert set(statuses.values()) == {500}
        assert f"ASGI rule '{rule}' broken by the app: {detail}" in log
        return
    expected = {name: case.status if isinstance(case.status, int) else case.status.get(app, case.status["*"])
                for name, case in CASES.items()}
    assert statuses == expected
    assert "ASGI rule" not in log
