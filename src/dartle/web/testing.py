"""Test clients that call an ASGI app in-process, through httpx.

`TestClient` is synchronous: the app runs on an event loop in a helper thread, so
plain (non-async) tests can use it. Used as a context manager it runs the app's
lifespan (startup on enter, shutdown on exit) and carries the lifespan state into
every request. `client.websocket_connect(path)` opens an in-process WebSocket.

`AsyncTestClient` is the same for async tests, on the test's own event loop.

Responses stream: the app runs as a task and body chunks reach the client as they
are sent, so `client.stream(...)` can read an endless event stream and closing it
delivers `http.disconnect` to the app.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import unquote

import httpx

from dartle.web.exceptions import WebSocketDisconnect
from dartle.web.types import ASGIApp, Message

__all__ = ["AsyncTestClient", "TestClient", "WebSocketDenialResponse", "WebSocketTestSession"]

T = TypeVar("T")
_END = object()


class _Settings:
    """What both clients need to build scopes and report errors."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        root_path: str,
        client: tuple[str, int],
        raise_server_exceptions: bool,
        websocket_denial: bool,
    ) -> None:
        self.app = app
        self.root_path = root_path
        self.client = client
        self.raise_server_exceptions = raise_server_exceptions
        self.websocket_denial = websocket_denial
        self.state: dict[str, Any] = {}

    def scope(self, kind: str, url: httpx.URL, headers: Sequence[tuple[bytes, bytes]]) -> dict[str, Any]:
        scheme = url.scheme
        port = url.port or {"http": 80, "https": 443, "ws": 80, "wss": 443}.get(scheme, 80)
        path = unquote(url.path)
        raw_path = url.raw_path.split(b"?", 1)[0]
        scope: dict[str, Any] = {
            "type": kind,
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": scheme,
            "path": self.root_path + path,
            "raw_path": self.root_path.encode("utf-8") + raw_path,
            "query_string": url.query,
            "root_path": self.root_path,
            "headers": [(bytes(k).lower(), bytes(v)) for k, v in headers],
            "client": self.client,
            "server": (url.host, port),
            "state": dict(self.state),
            "extensions": {},
        }
        if kind == "websocket" and self.websocket_denial:
            scope["extensions"]["websocket.http.response"] = {}
        return scope


# ---------------------------------------------------------------------------
# HTTP: one request/response exchange, run as a task on the app's loop
# ---------------------------------------------------------------------------


class _Exchange:
    def __init__(self, settings: _Settings, scope: dict[str, Any], body: bytes) -> None:
        self.settings = settings
        self.scope = scope
        self.body = body
        self.body_sent = False
        self.disconnected = asyncio.Event()
        self.started: asyncio.Future[Message | None] = asyncio.get_running_loop().create_future()
        self.chunks: asyncio.Queue[Any] = asyncio.Queue()
        self.error: BaseException | None = None
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        try:
            await self.settings.app(self.scope, self._receive, self._send)
        except BaseException as exc:
            self.error = exc
        finally:
            if not self.started.done():
                self.started.set_result(None)
            self.chunks.put_nowait(_END)

    async def _receive(self) -> Message:
        if not self.body_sent:
            self.body_sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.disconnected.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        if self.disconnected.is_set():
            raise OSError("the test client has closed the response")
        kind = message["type"]
        if kind == "http.response.start":
            if self.started.done():
                raise RuntimeError("http.response.start sent twice")
            self.started.set_result(message)
        elif kind == "http.response.body":
            if not self.started.done():
                raise RuntimeError("http.response.body sent before http.response.start")
            body = message.get("body", b"")
            if body:
                self.chunks.put_nowait(bytes(body))
            if not message.get("more_body", False):
                self.chunks.put_nowait(_END)
                # The response is complete: from now on receive() says http.disconnect.
                self.disconnected.set()

    async def start(self) -> tuple[int, list[tuple[bytes, bytes]]]:
        message = await self.started
        if message is None:
            await self.task
            if self.error is not None and self.settings.raise_server_exceptions:
                raise self.error
            if self.error is None and self.settings.raise_server_exceptions:
                raise RuntimeError("the app returned without sending a response")
            return 500, [(b"content-type", b"text/plain; charset=utf-8")]
        headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
        return message["status"], headers

    async def next_chunk(self) -> bytes | None:
        item = await self.chunks.get()
        if item is _END:
            return None
        return item  # type: ignore[no-any-return]

    async def close(self) -> None:
        # Per ASGI, receive() after the response is over answers http.disconnect.
        self.disconnected.set()
        await asyncio.wait((self.task,))
        if self.error is not None and self.settings.raise_server_exceptions:
            error, self.error = self.error, None
            raise error


class _AsyncBody(httpx.AsyncByteStream):
    def __init__(self, exchange: _Exchange) -> None:
        self.exchange = exchange

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (chunk := await self.exchange.next_chunk()) is not None:
            yield chunk

    async def aclose(self) -> None:
        await self.exchange.close()


class _AsyncTransport(httpx.AsyncBaseTransport):
    def __init__(self, settings: _Settings) -> None:
        self.settings = settings

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        scope = self.settings.scope("http", request.url, request.headers.raw)
        scope["method"] = request.method
        exchange = _Exchange(self.settings, scope, body)
        status, headers = await exchange.start()
        return httpx.Response(status, headers=headers, stream=_AsyncBody(exchange))


# ---------------------------------------------------------------------------
# Lifespan
# ---------------------------------------------------------------------------


class _Lifespan:
    def __init__(self, settings: _Settings) -> None:
        self.settings = settings
        self.to_app: asyncio.Queue[Message] = asyncio.Queue()
        self.from_app: asyncio.Queue[Message] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def _expect(self, *kinds: str) -> Message | None:
        assert self.task is not None
        getter = asyncio.ensure_future(self.from_app.get())
        await asyncio.wait((getter, self.task), return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            return getter.result()
        getter.cancel()
        return None

    async def startup(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
        scope["state"] = self.settings.state
        self.task = asyncio.ensure_future(self.settings.app(scope, self.to_app.get, self.from_app.put))
        await self.to_app.put({"type": "lifespan.startup"})
        message = await self._expect()
        if message is None:
            # The app raised on the lifespan scope: like servers, carry on without it.
            self.task = None
            return
        if message["type"] == "lifespan.startup.failed":
            await asyncio.wait((self.task,))
            raise RuntimeError(f"lifespan startup failed: {message.get('message', '')}")

    async def shutdown(self) -> None:
        if self.task is None:
            return
        await self.to_app.put({"type": "lifespan.shutdown"})
        message = await self._expect()
        await asyncio.wait((self.task,))
        if message is not None and message["type"] == "lifespan.shutdown.failed":
            raise RuntimeError(f"lifespan shutdown failed: {message.get('message', '')}")
        if self.task.exception() is not None and self.settings.raise_server_exceptions:
            raise self.task.exception()  # type: ignore[misc]


# ---------------------------------------------------------------------------
# Async client
# ---------------------------------------------------------------------------


class AsyncTestClient(httpx.AsyncClient):
    """An httpx.AsyncClient wired to `app` in-process; `async with` runs the lifespan."""

    def __init__(
        self,
        app: ASGIApp,
        base_url: str = "http://testserver",
        *,
        raise_server_exceptions: bool = True,
        root_path: str = "",
        client: tuple[str, int] = ("testclient", 50000),
        follow_redirects: bool = True,
        **kwargs: Any,
    ) -> None:
        self.settings = _Settings(
            app,
            root_path=root_path,
            client=client,
            raise_server_exceptions=raise_server_exceptions,
            websocket_denial=True,
        )
        self._lifespan: _Lifespan | None = None
        super().__init__(
            transport=_AsyncTransport(self.settings),
            base_url=base_url,
            follow_redirects=follow_redirects,
            **kwargs,
        )

    async def __aenter__(self) -> AsyncTestClient:
        await super().__aenter__()
        self._lifespan = _Lifespan(self.settings)
        await self._lifespan.startup()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        try:
            if self._lifespan is not None:
                await self._lifespan.shutdown()
        finally:
            await super().__aexit__(exc_type, exc_value, traceback)


# ---------------------------------------------------------------------------
# Sync client: the same machinery on a loop in a helper thread
# ---------------------------------------------------------------------------


class _LoopThread:
    """An event loop running in a daemon thread; `call` runs a coroutine there."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="testclient")
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


class _SyncBody(httpx.SyncByteStream):
    def __init__(self, exchange: _Exchange, portal: _LoopThread) -> None:
        self.exchange = exchange
        self.portal = portal

    def __iter__(self) -> Iterator[bytes]:
        while (chunk := self.portal.call(self.exchange.next_chunk())) is not None:
            yield chunk

    def close(self) -> None:
        self.portal.call(self.exchange.close())


class _SyncTransport(httpx.BaseTransport):
    def __init__(self, client: TestClient) -> None:
        self.client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        settings = self.client.settings
        scope = settings.scope("http", request.url, request.headers.raw)
        scope["method"] = request.method
        portal = self.client.portal

        async def begin() -> tuple[_Exchange, int, list[tuple[bytes, bytes]]]:
            exchange = _Exchange(settings, scope, body)
            status, headers = await exchange.start()
            return exchange, status, headers

        exchange, status, headers = portal.call(begin())
        return httpx.Response(status, headers=headers, stream=_SyncBody(exchange, portal))


class TestClient(httpx.Client):
    """A synchronous httpx.Client wired to `app` in-process.

    `with TestClient(app) as client:` runs the lifespan; without `with`, requests
    still work but startup/shutdown code does not run.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        app: ASGIApp,
        base_url: str = "http://testserver",
        *,
        raise_server_exceptions: bool = True,
        root_path: str = "",
        client: tuple[str, int] = ("testclient", 50000),
        follow_redirects: bool = True,
        websocket_denial: bool = True,
        **kwargs: Any,
    ) -> None:
        self.settings = _Settings(
            app,
            root_path=root_path,
            client=client,
            raise_server_exceptions=raise_server_exceptions,
            websocket_denial=websocket_denial,
        )
        self._portal: _LoopThread | None = None
        self._lifespan: _Lifespan | None = None
        super().__init__(
            transport=_SyncTransport(self),
            base_url=base_url,
            follow_redirects=follow_redirects,
            **kwargs,
        )

    @property
    def app(self) -> ASGIApp:
        return self.settings.app

    @property
    def portal(self) -> _LoopThread:
        if self._portal is None:
            self._portal = _LoopThread()
        return self._portal

    def __enter__(self) -> TestClient:
        super().__enter__()
        portal = self.portal

        async def start() -> _Lifespan:
            lifespan = _Lifespan(self.settings)
            await lifespan.startup()
            return lifespan

        self._lifespan = portal.call(start())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        try:
            if self._lifespan is not None:
                self.portal.call(self._lifespan.shutdown())
                self._lifespan = None
        finally:
            super().__exit__(exc_type, exc_value, traceback)
            self.close()

    def close(self) -> None:
        super().close()
        if self._portal is not None:
            self._portal.close()
            self._portal = None

    def websocket_connect(
        self,
        path: str,
        subprotocols: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> WebSocketTestSession:
        """Open a WebSocket to `path`; use it as a context manager."""
        url = self.base_url.join(path).copy_with(scheme="ws" if self.base_url.scheme == "http" else "wss")
        raw = [(b"host", (url.host + (f":{url.port}" if url.port else "")).encode())]
        raw += [(b"connection", b"upgrade"), (b"upgrade", b"websocket")]
        raw += [(b"sec-websocket-version", b"13"), (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ==")]
        if subprotocols:
            raw.append((b"sec-websocket-protocol", ", ".join(subprotocols).encode()))
        for key, value in (headers or {}).items():
            raw.append((key.lower().encode("latin-1"), value.encode("latin-1")))
        for name, value in self.cookies.items():
            raw.append((b"cookie", f"{name}={value}".encode("latin-1")))
        scope = self.settings.scope("websocket", url, raw)
        scope["subprotocols"] = list(subprotocols or [])
        return WebSocketTestSession(self.settings, self.portal, scope)


# ---------------------------------------------------------------------------
# WebSocket session (sync)
# ---------------------------------------------------------------------------


class WebSocketDenialResponse(Exception):
    """The app refused the handshake with an HTTP response."""

    def __init__(self, status_code: int, headers: list[tuple[bytes, bytes]], content: bytes):
        super().__init__(status_code)
        self.status_code = status_code
        self.headers = httpx.Headers(headers)
        self.content = content

    def json(self) -> Any:
        return json.loads(self.content)


class WebSocketTestSession:
    """An in-process WebSocket client session."""

    __test__ = False

    def __init__(self, settings: _Settings, portal: _LoopThread, scope: dict[str, Any]) -> None:
        self.settings = settings
        self.portal = portal
        self.scope = scope
        self.from_app: queue.Queue[Any] = queue.Queue()
        self.to_app: asyncio.Queue[Message] | None = None
        self.task: asyncio.Future[None] | None = None
        self.accepted_subprotocol: str | None = None
        self.extra_headers: list[tuple[bytes, bytes]] = []
        self.closed = False

    def __enter__(self) -> WebSocketTestSession:
        async def start() -> None:
            self.to_app = asyncio.Queue()
            self.task = asyncio.ensure_future(self._run())
            await self.to_app.put({"type": "websocket.connect"})

        self.portal.call(start())
        message = self._next()
        kind = message["type"]
        if kind == "websocket.accept":
            self.accepted_subprotocol = message.get("subprotocol")
            self.extra_headers = list(message.get("headers") or [])
            return self
        self.closed = True
        self._finish()
        if kind == "websocket.close":
            raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
        if kind == "websocket.http.response.start":
            body = b""
            while True:
                part = self._next()
                body += part.get("body", b"")
                if not part.get("more_body", False):
                    break
            raise WebSocketDenialResponse(message["status"], list(message.get("headers", [])), body)
        raise RuntimeError(f"unexpected message before accept: {message!r}")

    def __exit__(self, *exc_info: object) -> None:
        try:
            if not self.closed:
                self.close(1000)
        finally:
            self._finish()

    async def _run(self) -> None:
        assert self.to_app is not None
        try:
            await self.settings.app(self.scope, self.to_app.get, self._send)
        except BaseException as exc:
            self.from_app.put(exc)
        finally:
            self.from_app.put(_END)

    async def _send(self, message: Message) -> None:
        self.from_app.put(message)

    def _next(self) -> Message:
        item = self.from_app.get()
        if isinstance(item, BaseException):
            self.closed = True
            self._finish()
            raise item
        if item is _END:
            self.closed = True
            raise WebSocketDisconnect(1006, "the app returned")
        return item  # type: ignore[no-any-return]

    def _finish(self) -> None:
        task = self.task
        if task is None:
            return
        self.task = None

        async def wait() -> None:
            await asyncio.wait((task,))

        self.portal.call(wait())

    def _put(self, message: Message) -> None:
        assert self.to_app is not None
        self.portal.loop.call_soon_threadsafe(self.to_app.put_nowait, message)

    # --- client API ------------------------------------------------------------

    def send(self, message: Message) -> None:
        """Deliver a raw ASGI event to the app."""
        self._put(message)

    def send_text(self, data: str) -> None:
        self._put({"type": "websocket.receive", "text": data})

    def send_bytes(self, data: bytes) -> None:
        self._put({"type": "websocket.receive", "bytes": data})

    def send_json(self, data: Any, mode: str = "text") -> None:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        if mode == "text":
            self.send_text(text)
        else:
            self.send_bytes(text.encode())

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close from the client side (the app receives websocket.disconnect)."""
        self.closed = True
        self._put({"type": "websocket.disconnect", "code": code, "reason": reason})

    def receive(self) -> Message:
        """The next raw event the app sent."""
        return self._next()

    def _receive_data(self) -> Message:
        message = self._next()
        if message["type"] == "websocket.close":
            self.closed = True
            raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
        return message

    def receive_text(self) -> str:
        message = self._receive_data()
        if message.get("text") is None:
            raise TypeError(f"expected a text message, got {message!r}")
        return message["text"]  # type: ignore[no-any-return]

    def receive_bytes(self) -> bytes:
        message = self._receive_data()
        if message.get("bytes") is None:
            raise TypeError(f"expected a binary message, got {message!r}")
        return message["bytes"]  # type: ignore[no-any-return]

    def receive_json(self, mode: str = "text") -> Any:
        data = self.receive_text() if mode == "text" else self.receive_bytes()
        return json.loads(data)
