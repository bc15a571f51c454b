"""The strict ASGI checker (dartle.asgi.validate, `dartle run --strict-asgi`).

App-side rules are tested over real sockets: misbehaving apps (tests/asgi/apps/
strict_apps.py) behind the dartle server, whose log must name the broken rule. Server-side
rules need a server that breaks them, which we do not have: those tests drive the
checker in-process with hand-written scopes and events.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.sync.client import connect

from dartle.asgi.types import Message, Scope
from dartle.asgi.validate import RULES, ASGIViolation, StrictASGIMiddleware
from tests.server.rawhttp import RawConn, ServerClosed, request
from tests.support.servers import ServerProcess, run_server

STRICT_APPS = "tests.asgi.apps.strict_apps"


@pytest.fixture(scope="module")
def strict_server() -> Iterator[ServerProcess]:
    with run_server(f"{STRICT_APPS}:app", "--strict-asgi") as process:
        yield process


def _logged(process: ServerProcess, rule: str, detail: str) -> None:
    pattern = rf"ASGI rule '{re.escape(rule)}' broken by the app: [^\n]*{re.escape(detail)}"
    process.wait_for_log(pattern.encode())


# path -> (rule, a piece of the detail, what the client sees)
HTTP_CASES = {
    "/uppercase": ("headers.lowercase", "b'Content-Type'", 500),
    "/str-headers": ("headers.shape", "is not a pair of bytes", 500),
    "/double-start": ("http.response.start.once", "after http.response.start", 500),
    "/body-first": ("http.response.body.order", "before http.response.start", 500),
    "/status-str": ("http.response.start.status", "status '200'", 500),
    "/body-str": ("event.key", "http.response.body 'body' must be bytes", 500),
    "/unknown-event": ("event.unknown", "'http.response.bogus' in a http scope", 500),
    "/pathsend-relative": ("event.key", "'path' must be an absolute str path", 500),
    "/nan": ("event.values", "float nan is not finite", 500),
    "/header-crlf": ("headers.value", "b'x-split'", 500),
    # the response was already complete: the client has it, the log has the violation
    "/trailers-unasked": ("http.response.trailers.order", "not started with trailers=True", 200),
}


@pytest.mark.parametrize("path", list(HTTP_CASES))
def test_app_breaking_an_http_rule_is_named_in_the_log(strict_server: ServerProcess, path: str) -> None:
    rule, detail, status = HTTP_CASES[path]
    r = httpx.get(strict_server.url + path, timeout=10)
    assert r.status_code == status
    _logged(strict_server, rule, detail)


def test_app_returning_mid_response_is_named(strict_server: ServerProcess) -> None:
    conn = RawConn.tcp(strict_server.host, strict_server.port)
    try:
        conn.send(request("GET", "/returns-early"))
        head = conn.read_head()
        with pytest.raises(ServerClosed):
            conn.read_body(head)
    finally:
        conn.close()
    _logged(strict_server, "http.response.incomplete", "returned while streaming the body")


def test_well_behaved_app_passes(strict_server: ServerProcess) -> None:
    r = httpx.post(strict_server.url + "/ok", content=b"a body", timeout=10)
    assert (r.status_code, r.text) == (200, "fine")


def test_without_strict_asgi_the_server_lets_it_pass() -> None:
    with run_server(f"{STRICT_APPS}:app") as process:
        r = httpx.get(process.url + "/uppercase", timeout=10)
        assert (r.status_code, r.text) == (200, "mixed-case header name")
        assert b"ASGI rule" not in process.read_log(0.2)


def test_strict_wrapper_works_on_another_server() -> None:
    """The checker is plain ASGI: the same violation under uvicorn."""
    with run_server(f"{STRICT_APPS}:strict_app", kind="uvicorn") as process:
        assert httpx.get(process.url + "/ok", timeout=10).text == "fine"
        assert httpx.get(process.url + "/body-first", timeout=10).status_code == 500
        _logged(process, "http.response.body.order", "before http.response.start")


def _ws_url(process: ServerProcess, path: str) -> str:
    return process.url.replace("http://", "ws://") + path


def test_websocket_echo_passes(strict_server: ServerProcess) -> None:
    with connect(_ws_url(strict_server, "/ws/echo")) as ws:
        ws.send("text")
        ws.send(b"bytes")
        assert ws.recv(timeout=10) == "text"
        assert ws.recv(timeout=10) == b"bytes"


@pytest.mark.parametrize(("path", "rule", "detail"), [
    ("/ws/bad-subprotocol", "websocket.accept.subprotocol", "'never-offered' is not in ['chat']"),
    ("/ws/send-before-accept", "websocket.send.order", "websocket.send before websocket.accept"),
])
def test_websocket_rule_broken_before_accept(strict_server: ServerProcess, path: str, rule: str,
                                             detail: str) -> None:
    with pytest.raises(InvalidStatus) as refused, \
            connect(_ws_url(strict_server, path), subprotocols=["chat"]):  # type: ignore[list-item]
        pass
    assert refused.value.response.status_code == 500
    _logged(strict_server, rule, detail)


@pytest.mark.parametrize(("path", "rule", "detail"), [
    ("/ws/both", "websocket.message.one-of", "with bytes=b'b' and text='a'"),
    ("/ws/bad-close-code", "websocket.close.code", "close code 1006"),
])
def test_websocket_rule_broken_after_accept(strict_server: ServerProcess, path: str, rule: str,
                                            detail: str) -> None:
    with connect(_ws_url(strict_server, path)) as ws, pytest.raises(ConnectionClosedError) as closed:
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
    _logged(strict_server, rule, detail)


# -- in-process: the server side, lifespan, and the API -------------------------------------------


def http_scope(**changes: Any) -> Scope:
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
        "method": "GET", "scheme": "http", "path": "/", "raw_path": b"/", "query_string": b"",
        "root_path": "", "headers": [(b"host", b"x")], "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000), "extensions": {},
    }
    scope.update(changes)
    return scope


class Script:
    """A scripted 'server': hands out `incoming` events and records what the app sends."""

    def __init__(self, *incoming: Message) -> None:
        self.incoming = list(incoming)
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        return self.incoming.pop(0)

    async def send(self, message: Message) -> None:
        self.sent.append(message)


async def hello(scope: Scope, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"a", b"b")]})
    await send({"type": "http.response.body", "body": b"hi"})


async def run_http(scope: Scope, *incoming: Message, app: Any = hello) -> Script:
    script = Script(*incoming)
    await StrictASGIMiddleware(app)(scope, script.receive, script.send)
    return script


async def test_conforming_exchange_passes_through_unchanged() -> None:
    script = await run_http(http_scope(), {"type": "http.request", "body": b"", "more_body": False})
    assert [m["type"] for m in script.sent] == ["http.response.start", "http.response.body"]


@pytest.mark.parametrize(("changes", "detail"), [
    ({"asgi": {"version": "4.0"}}, "scope['asgi'] is {'version': '4.0'}"),
    ({"method": "get"}, "scope['method'] must be an uppercased, non-empty str"),
    ({"http_version": "1.2"}, "scope['http_version'] must be one of"),
    ({"path": b"/"}, "scope['path'] must be a str"),
    ({"query_string": "a=1"}, "scope['query_string'] must be bytes"),
    ({"scheme": ""}, "scope['scheme'] must be a non-empty str"),
    ({"client": ("127.0.0.1", "5000")}, "scope['client'] must be [host: str, port: int]"),
    ({"headers": [(b":authority", b"x")]}, "b':authority'"),
    ({"headers": [("host", "x")]}, "is not a pair of bytes"),
])
async def test_bad_scope_is_the_server_s_violation(changes: dict[str, Any], detail: str) -> None:
    with pytest.raises(ASGIViolation) as violation:
        await run_http(http_scope(**changes), {"type": "http.request"})
    assert violation.value.side == "server"
    assert detail in str(violation.value)


async def test_server_events_are_checked() -> None:
    async def reads_twice(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await receive()

    after_final = re.escape("http.request after the final body chunk")
    with pytest.raises(ASGIViolation, match=after_final) as violation:
        await run_http(http_scope(), {"type": "http.request"}, {"type": "http.request"}, app=reads_twice)
    assert (violation.value.rule, violation.value.side) == ("http.request.order", "server")
    with pytest.raises(ASGIViolation, match="'body' must be bytes") as violation:
        await run_http(http_scope(), {"type": "http.request", "body": "x"})
    assert violation.value.side == "server"
    with pytest.raises(ASGIViolation, match="bytearray") as violation:
        await run_http(http_scope(), {"type": "http.request", "body": bytearray(b"x")})
    assert violation.value.rule == "event.values"


async def test_violation_message_names_rule_side_and_rule_text() -> None:
    async def double(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.start", "status": 200})

    with pytest.raises(ASGIViolation) as violation:
        await run_http(http_scope(), app=double)
    text = str(violation.value)
    assert text.startswith("ASGI rule 'http.response.start.once' broken by the app:")
    assert RULES["http.response.start.once"] in text


async def test_ignored_rules_and_violation_hook() -> None:
    seen: list[ASGIViolation] = []

    async def shouty(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"X-Up", b"1")]})
        await send({"type": "http.response.body", "body": b""})

    script = Script()
    lenient = StrictASGIMiddleware(shouty, ignore={"headers.lowercase"}, on_violation=seen.append)
    await lenient(http_scope(), script.receive, script.send)
    assert len(script.sent) == 2 and seen == [] and lenient.violations == []
    strict = StrictASGIMiddleware(shouty, on_violation=seen.append)
    with pytest.raises(ASGIViolation):
        await strict(http_scope(), script.receive, script.send)
    assert [v.rule for v in seen] == ["headers.lowercase"] == [v.rule for v in strict.violations]
    with pytest.raises(ValueError, match="unknown ASGI rule id"):
        StrictASGIMiddleware(shouty, ignore={"no.such.rule"})


async def test_response_left_unfinished_is_fine_when_the_client_left() -> None:
    async def stops_on_disconnect(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        await receive()

    await run_http(http_scope(), {"type": "http.disconnect"}, app=stops_on_disconnect)


async def test_extension_events_need_the_extension_advertised() -> None:
    async def hints(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.early_hint", "links": [b"</a.css>; rel=preload"]})
        await send({"type": "http.response.body"})

    await run_http(http_scope(extensions={"http.response.early_hint": {}}), app=hints)
    with pytest.raises(ASGIViolation, match=re.escape("has no 'http.response.early_hint'")):
        await run_http(http_scope(), app=hints)


def ws_scope(**changes: Any) -> Scope:
    scope = http_scope(type="websocket", scheme="ws", subprotocols=["chat"])
    del scope["method"]
    scope.update(changes)
    return scope


async def test_websocket_server_side_order() -> None:
    async def echo_once(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept", "subprotocol": "chat"})
        await receive()

    script = Script({"type": "websocket.connect"}, {"type": "websocket.receive", "text": "x"})
    await StrictASGIMiddleware(echo_once)(ws_scope(), script.receive, script.send)
    bad = Script({"type": "websocket.receive", "text": "x"})
    with pytest.raises(ASGIViolation, match=re.escape("websocket.receive before websocket.connect")):
        await StrictASGIMiddleware(echo_once)(ws_scope(), bad.receive, bad.send)
    both = Script({"type": "websocket.connect"}, {"type": "websocket.receive", "text": "x", "bytes": b"y"})
    with pytest.raises(ASGIViolation) as violation:
        await StrictASGIMiddleware(echo_once)(ws_scope(), both.receive, both.send)
    assert (violation.value.rule, violation.value.side) == ("websocket.message.one-of", "server")


async def test_websocket_accept_headers_need_spec_2_1() -> None:
    async def with_headers(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept", "headers": [(b"x-a", b"1")]})

    script = Script({"type": "websocket.connect"})
    await StrictASGIMiddleware(with_headers)(ws_scope(), script.receive, script.send)
    old = Script({"type": "websocket.connect"})
    with pytest.raises(ASGIViolation, match=re.escape("spec_version is '2.0'")):
        await StrictASGIMiddleware(with_headers)(ws_scope(asgi={"version": "3.0", "spec_version": "2.0"}),
                                                 old.receive, old.send)


async def test_lifespan_order() -> None:
    async def lifespan(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})

    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    good = Script({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"})
    await StrictASGIMiddleware(lifespan)(scope, good.receive, good.send)
    assert [m["type"] for m in good.sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]

    async def answers_early(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "lifespan.startup.complete"})

    early = Script()
    with pytest.raises(ASGIViolation) as violation:
        await StrictASGIMiddleware(answers_early)(scope, early.receive, early.send)
    assert violation.value.rule == "lifespan.answer"
    async def walks_away(scope: Scope, receive: Any, send: Any) -> None:
        await receive()

    silent = Script({"type": "lifespan.startup"})
    with pytest.raises(ASGIViolation, match=re.escape("returned without answering lifespan.startup")):
        await StrictASGIMiddleware(walks_away)(scope, silent.receive, silent.send)
    reversed_order = Script({"type": "lifespan.shutdown"})
    with pytest.raises(ASGIViolation, match=re.escape("lifespan.shutdown after nothing")):
        await StrictASGIMiddleware(lifespan)(scope, reversed_order.receive, reversed_order.send)


async def test_unknown_scope_type() -> None:
    with pytest.raises(ASGIViolation, match="scope type 'telepathy'"):
        await StrictASGIMiddleware(hello)({"type": "telepathy"}, Script().receive, Script().send)
