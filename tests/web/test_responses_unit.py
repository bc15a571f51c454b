"""Responses, SSE formatting, cookies, errors and middleware, in-process."""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
from typing import Any

import pydantic
import pytest

from dartle.web.app import App
from dartle.web.background import BackgroundTask, BackgroundTasks
from dartle.web.exceptions import HTTPException
from dartle.web.middleware import Middleware
from dartle.web.requests import Request
from dartle.web.responses import (
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
    format_set_cookie,
)
from dartle.web.sse import EventSourceResponse, ServerSentEvent
from dartle.web.testing import TestClient
from dartle.web.types import ASGIApp, Message, Receive, Scope, Send


def test_headers_rendered_once_and_editable() -> None:
    response = PlainTextResponse("hé", headers={"X-One": "1"})
    assert response.raw_headers == [
        (b"x-one", b"1"),
        (b"content-length", b"3"),
        (b"content-type", b"text/plain; charset=utf-8"),
    ]
    response.headers["x-two"] = "2"
    assert response.raw_headers[-1] == (b"x-two", b"2")
    assert Response(status_code=204).raw_headers == []
    assert Response(b"x", headers={"content-length": "1"}).raw_headers == [(b"content-length", b"1")]


class Point(pydantic.BaseModel):
    x: int
    when: dt.date


def test_json_response_serialises_models_and_dates() -> None:
    body = JSONResponse({"p": Point(x=1, when=dt.date(2024, 5, 6)), "s": {1, 2} and [1]}).body
    assert body == b'{"p":{"x":1,"when":"2024-05-06"},"s":[1]}'


def test_set_cookie_attributes() -> None:
    when = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    assert format_set_cookie("a", "b", expires=when, path=None, samesite=None) == (
        "a=b; Expires=Wed, 02 Jan 2030 03:04:05 GMT"
    )
    assert format_set_cookie("a", 'x;"y', secure=True, partitioned=True, samesite="none") == (
        'a="x;\\"y"; Path=/; Secure; SameSite=None; Partitioned'
    )
    with pytest.raises(ValueError):
        format_set_cookie("bad name", "x")
    with pytest.raises(ValueError):
        format_set_cookie("a", "b", partitioned=True)  # partitioned needs secure


def test_server_sent_event_encoding() -> None:
    assert ServerSentEvent("a\r\nb\nc", event="e", id=7, retry=10).encode() == (
        b"id: 7\nevent: e\nretry: 10\ndata: a\ndata: b\ndata: c\n\n"
    )
    assert ServerSentEvent({"k": "v"}).encode() == b'data: {"k":"v"}\n\n'
    assert ServerSentEvent(comment="hi").encode() == b": hi\n\n"
    with pytest.raises(ValueError):
        ServerSentEvent("x", event="a\nb")
    with pytest.raises(ValueError):
        ServerSentEvent("x", retry=-1)


def test_sse_keep_alive_pings_while_idle_then_events() -> None:
    release = asyncio.Event()
    app = App()

    @app.get("/events")
    async def events(request: Request) -> Response:
        async def source() -> Any:
            yield "one"
            await release.wait()
            yield ServerSentEvent("two", id="2")

        return EventSourceResponse(source(), ping=0.01)

    @app.get("/release")
    async def do_release(request: Request) -> str:
        release.set()
        return "ok"

    client = TestClient(app)
    with client.stream("GET", "/events") as r:
        chunks = r.iter_bytes()
        assert next(chunks) == b"data: one\n\n"
        assert next(chunks) == b": ping\n\n"
        client.get("/release")
        rest = b"".join(chunks)
    assert rest.endswith(b"id: 2\ndata: two\n\n")
    assert set(rest[: -len(b"id: 2\ndata: two\n\n")].split(b"\n\n")) <= {b": ping", b""}


def test_streaming_response_stops_on_disconnect_in_process() -> None:
    stopped = asyncio.Event()
    app = App()

    @app.get("/endless")
    async def endless(request: Request) -> Response:
        async def source() -> Any:
            try:
                yield b"first"
                await asyncio.Event().wait()
            finally:
                stopped.set()

        return StreamingResponse(source())

    client = TestClient(app)
    with client.stream("GET", "/endless") as r:
        assert next(r.iter_bytes()) == b"first"
    # Closing the response delivered http.disconnect; the generator was closed.
    assert stopped.is_set()


def test_background_tasks_run_in_order_after_the_body() -> None:
    log: list[str] = []
    app = App()

    def sync_task(x: str) -> None:
        log.append(f"sync {x}")

    async def async_task(x: str) -> None:
        log.append(f"async {x}")

    @app.get("/")
    async def handler(request: Request) -> Response:
        tasks = BackgroundTasks()
        tasks.add_task(sync_task, "a")
        tasks.add_task(async_task, "b")
        log.append("handler")
        return PlainTextResponse("done", background=tasks)

    @app.get("/single")
    async def single(request: Request) -> Response:
        return Response(b"", background=BackgroundTask(async_task, "c"))

    client = TestClient(app)
    assert client.get("/").text == "done"
    assert log == ["handler", "sync a", "async b"]
    client.get("/single")
    assert log[-1] == "async c"


def test_exception_handlers_by_class_and_status_and_bodyless() -> None:
    class Oops(Exception):
        pass

    class BigOops(Oops):
        pass

    app = App()
    app.add_exception_handler(Oops, lambda request, exc: PlainTextResponse(f"oops {exc}", 422))

    @app.exception_handler(403)
    async def forbidden(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("custom forbidden", status_code=403)

    @app.get("/subclass")
    async def subclass(request: Request) -> None:
        raise BigOops("big")

    @app.get("/forbidden")
    async def forbidden_route(request: Request) -> None:
        raise HTTPException(403)

    @app.get("/nocontent")
    async def nocontent(request: Request) -> None:
        raise HTTPException(304)

    client = TestClient(app)
    assert (client.get("/subclass").status_code, client.get("/subclass").text) == (422, "oops big")
    assert client.get("/forbidden").text == "custom forbidden"
    r = client.get("/nocontent")
    assert (r.status_code, r.content, "content-length" in r.headers) == (304, b"", False)


def test_server_error_reraised_with_500_handler() -> None:
    app = App(exception_handlers={500: lambda request, exc: PlainTextResponse("sorry", 500)})

    @app.get("/boom")
    async def boom(request: Request) -> None:
        raise ZeroDivisionError("boom")

    with pytest.raises(ZeroDivisionError):
        TestClient(app).get("/boom")
    r = TestClient(app, raise_server_exceptions=False).get("/boom")
    assert (r.status_code, r.text) == (500, "sorry")


def test_debug_page_only_in_debug_mode() -> None:
    async def boom(request: Request) -> None:
        raise ValueError("<secret>")

    for debug in (True, False):
        app = App(debug=debug)
        app.add_route("/boom", boom)
        client = TestClient(app, raise_server_exceptions=False)
        html = client.get("/boom", headers={"accept": "text/html"})
        text = client.get("/boom", headers={"accept": "*/*"})
        assert html.status_code == text.status_code == 500
        if debug:
            assert html.headers["content-type"].startswith("text/html")
            assert "ValueError: &lt;secret&gt;" in html.text
            assert "<secret>" not in html.text
            assert "Traceback" in text.text and "<secret>" in text.text
        else:
            assert html.text == text.text == "Internal Server Error"


def test_function_middleware_order_and_short_circuit() -> None:
    app = App()
    order: list[str] = []

    @app.middleware("http")
    async def inner(request: Request, call_next: Any) -> Response:
        order.append("inner")
        return await call_next(request)

    @app.middleware("http")
    async def outer(request: Request, call_next: Any) -> Response:
        order.append("outer")
        if request.url.path == "/blocked":
            return PlainTextResponse("blocked", status_code=403)
        return await call_next(request)

    app.add_route("/", lambda request: "ok")
    client = TestClient(app)
    assert client.get("/").text == "ok"
    assert order == ["outer", "inner"]
    assert client.get("/blocked").status_code == 403
    assert client.get("/missing").status_code == 404
    with pytest.raises(RuntimeError, match="after the application has started"):
        app.middleware("http")(inner)


def test_function_middleware_sees_streaming_unbuffered_and_errors() -> None:
    app = App()
    seen: list[str] = []

    @app.middleware("http")
    async def mw(request: Request, call_next: Any) -> Response:
        try:
            response = await call_next(request)
        except RuntimeError:
            seen.append("saw error")
            raise
        seen.append(type(response).__name__)
        return response

    @app.get("/stream")
    async def stream(request: Request) -> Response:
        async def gen() -> Any:
            yield b"a"
            yield b"b"

        return StreamingResponse(gen())

    @app.get("/crash")
    async def crash(request: Request) -> None:
        raise RuntimeError("x")

    @app.get("/http-error")
    async def http_error(request: Request) -> None:
        raise HTTPException(418)

    client = TestClient(app, raise_server_exceptions=False)
    assert client.get("/stream").content == b"ab"
    assert client.get("/crash").status_code == 500
    assert client.get("/http-error").status_code == 418
    assert seen == ["StreamingResponse", "saw error", "JSONResponse"]


def test_function_middleware_around_a_mounted_asgi_app() -> None:
    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        await send({"type": "http.response.start", "status": 201, "headers": [(b"x-raw", b"1")]})
        await send({"type": "http.response.body", "body": message["body"], "more_body": True})
        await send({"type": "http.response.body", "body": b"-part2"})

    app = App()
    app.mount("/raw", raw)

    @app.middleware("http")
    async def mw(request: Request, call_next: Any) -> Response:
        await request.body()  # read here, and still delivered to the mounted app
        response = await call_next(request)
        response.headers["x-mw"] = str(response.status_code)
        return response

    r = TestClient(app).post("/raw/x", content=b"part1")
    assert (r.status_code, r.content, r.headers["x-raw"], r.headers["x-mw"]) == (
        201,
        b"part1-part2",
        "1",
        "201",
    )


var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


class SetVarMiddleware:
    """A pure ASGI middleware: sets a context variable, installed via Middleware()."""

    def __init__(self, app: ASGIApp, value: str) -> None:
        self.app = app
        self.value = value

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        var.set(self.value)
        await self.app(scope, receive, send)


class CrashMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/mw-crash":
            raise HTTPException(429, "slow down")
        await self.app(scope, receive, send)


def test_asgi_middleware_list_and_add_middleware() -> None:
    app = App(middleware=[Middleware(SetVarMiddleware, value="from-list")])
    app.add_middleware(CrashMiddleware)
    app.add_route("/", lambda request: var.get())
    client = TestClient(app)
    assert client.get("/").text == "from-list"
    r = client.get("/mw-crash")
    assert (r.status_code, r.json()) == (429, {"detail": "slow down"})
    stack = app._stack
    assert client.get("/").text == "from-list"
    assert app._stack is stack  # built once


def test_send_tracking_does_not_double_respond() -> None:
    async def half(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("after start")

    sent: list[Message] = []
    app = App(middleware=[Middleware(SetVarMiddleware, value="x")])
    app.mount("/half", half)

    async def run() -> None:
        scope = {"type": "http", "method": "GET", "path": "/half/x", "headers": [], "query_string": b""}

        async def receive() -> Message:
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        with pytest.raises(RuntimeError, match="after start"):
            await app(scope, receive, send)

    asyncio.run(run())
    assert [m["type"] for m in sent] == ["http.response.start"]
