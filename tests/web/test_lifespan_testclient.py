"""Lifespan, the test clients, WebSockets in-process, and the thread pool."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import AsyncIterator
from typing import Any, TypedDict

import pytest

from dartle.asgi import concurrency
from dartle.asgi.concurrency import run_async_from_thread, run_sync, set_thread_limit
from dartle.web.app import App
from dartle.web.exceptions import WebSocketDisconnect
from dartle.web.requests import Request
from dartle.web.responses import PlainTextResponse, Response
from dartle.web.testing import AsyncTestClient, TestClient, WebSocketDenialResponse
from dartle.web.websockets import WebSocket


class AppState(TypedDict):
    pool: str


def lifespan_app(log: list[str]) -> App:
    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[AppState]:
        log.append("enter")
        yield {"pool": "ready"}
        log.append("exit")

    app = App(
        lifespan=lifespan,
        on_startup=[lambda: log.append("startup hook")],
        on_shutdown=[lambda: log.append("shutdown hook")],
    )

    @app.get("/")
    async def home(request: Request) -> str:
        request.state.scratch = "per request"
        return request.state.pool

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(websocket.state.pool)
        await websocket.close()

    return app


def test_lifespan_runs_around_the_client_and_state_reaches_requests() -> None:
    log: list[str] = []
    with TestClient(lifespan_app(log)) as client:
        assert log == ["startup hook", "enter"]
        assert client.get("/").text == "ready"
        assert client.get("/").text == "ready"  # scratch did not leak into lifespan state
        with client.websocket_connect("/ws") as ws:
            assert ws.receive_text() == "ready"
    assert log == ["startup hook", "enter", "exit", "shutdown hook"]


async def test_async_client_runs_lifespan() -> None:
    log: list[str] = []
    async with AsyncTestClient(lifespan_app(log)) as client:
        assert (await client.get("/")).text == "ready"
    assert log == ["startup hook", "enter", "exit", "shutdown hook"]


def test_failed_startup_is_reported() -> None:
    @contextlib.asynccontextmanager
    async def broken(app: App) -> AsyncIterator[None]:
        raise RuntimeError("database unreachable")
        yield

    with pytest.raises(RuntimeError, match="database unreachable"), TestClient(App(lifespan=broken)):
        pass


async def test_async_client_streams_and_raises_server_errors() -> None:
    app = App()

    @app.get("/boom")
    async def boom(request: Request) -> None:
        raise KeyError("k")

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        return Response(await request.body())

    async with AsyncTestClient(app) as client:
        assert (await client.post("/echo", content=b"abc")).content == b"abc"
        with pytest.raises(KeyError):
            await client.get("/boom")


def test_websocket_session_in_process() -> None:
    app = App()

    @app.websocket("/chat")
    async def chat(websocket: WebSocket) -> None:
        await websocket.accept(subprotocol="v1", headers=[(b"x-a", b"b")])
        async for data in websocket.iter_json():
            if data == "bye":
                await websocket.close(4001, "see you")
                return
            await websocket.send_json({"echo": data})

    @app.websocket("/binary")
    async def binary(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_bytes(await websocket.receive_bytes() * 2)
        await websocket.receive_bytes()

    @app.websocket("/deny")
    async def deny(websocket: WebSocket) -> None:
        await websocket.send_denial_response(PlainTextResponse("go away", status_code=403))

    client = TestClient(app)
    with client.websocket_connect("/chat", subprotocols=["v1"]) as ws:
        assert ws.accepted_subprotocol == "v1"
        assert ws.extra_headers == [(b"x-a", b"b")]
        ws.send_json({"n": 1})
        assert ws.receive_json() == {"echo": {"n": 1}}
        ws.send_json("bye")
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
        assert (info.value.code, info.value.reason) == (4001, "see you")
    with client.websocket_connect("/binary") as ws:
        ws.send_bytes(b"ab")
        assert ws.receive_bytes() == b"abab"
        ws.send_text("text where bytes expected")
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_bytes()
        assert info.value.code == 1003
    with pytest.raises(WebSocketDenialResponse) as denial, client.websocket_connect("/deny"):
        pass
    assert (denial.value.status_code, denial.value.content) == (403, b"go away")
    no_ext = TestClient(app, websocket_denial=False)
    with pytest.raises(WebSocketDisconnect) as closed, no_ext.websocket_connect("/deny"):
        pass
    assert closed.value.code == 1008


def test_websocket_client_disconnect_ends_iteration() -> None:
    done = threading.Event()
    app = App()

    @app.websocket("/")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        async for _ in websocket:
            pass
        done.set()

    with TestClient(app).websocket_connect("/") as ws:
        ws.send_text("x")
    assert done.is_set()


# --- the thread pool --------------------------------------------------------------------


@pytest.fixture
def restore_thread_limit() -> Any:
    before = concurrency.get_thread_limit()
    yield
    set_thread_limit(before)


async def test_thread_limit_bounds_the_pool(restore_thread_limit: Any) -> None:
    set_thread_limit(2)
    barrier = threading.Barrier(2, timeout=10)
    names: set[str] = set()

    def work() -> None:
        names.add(threading.current_thread().name)
        barrier.wait()  # two calls must run at once for this to return

    await asyncio.gather(*(run_sync(work) for _ in range(6)))
    assert len(names) == 2


def test_app_thread_limit_setting(restore_thread_limit: Any) -> None:
    App(thread_limit=3)
    assert concurrency.get_thread_limit() == 3
    with pytest.raises(ValueError):
        set_thread_limit(0)


request_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_var")


async def test_run_sync_carries_context_and_calls_back_into_the_loop() -> None:
    request_var.set("outer value")
    loop_thread = threading.current_thread()

    async def on_loop(x: int) -> tuple[int, bool]:
        return x + 1, threading.current_thread() is loop_thread

    def blocking() -> tuple[str, tuple[int, bool]]:
        return request_var.get(), run_async_from_thread(on_loop, 1)

    assert await run_sync(blocking) == ("outer value", (2, True))
    with pytest.raises(RuntimeError, match="run_sync"):
        run_async_from_thread(on_loop, 1)


def test_websocket_errors_before_accept() -> None:
    from dartle.web.exceptions import HTTPException, WebSocketException

    app = App()

    @app.websocket("/http-error")
    async def http_error(websocket: WebSocket) -> None:
        raise HTTPException(401, "who are you", headers={"www-authenticate": "Bearer"})

    @app.websocket("/ws-error")
    async def ws_error(websocket: WebSocket) -> None:
        raise WebSocketException(1008, "not allowed")

    client = TestClient(app)
    with pytest.raises(WebSocketDenialResponse) as denial, client.websocket_connect("/http-error"):
        pass
    assert denial.value.status_code == 401
    assert denial.value.headers["www-authenticate"] == "Bearer"
    assert denial.value.json() == {"detail": "who are you"}
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/ws-error"):
        pass
    assert (closed.value.code, closed.value.reason) == (1008, "not allowed")
    with pytest.raises(WebSocketDenialResponse) as missing, client.websocket_connect("/nowhere"):
        pass
    assert missing.value.status_code == 404
