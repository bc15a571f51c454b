"""The incoming request: a lazy view of an ASGI scope plus its body channel.

Nothing is parsed until asked: headers, query parameters, cookies and the URL are
built on first access and cached, so a handler that reads none of them costs nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from http.cookies import _unquote
from typing import TYPE_CHECKING, Any

from dartle.web.datastructures import URL, Address, Headers, QueryParams, State
from dartle.web.exceptions import ClientDisconnect, HTTPException
from dartle.web.responses import BODY_DONE_KEY
from dartle.web.types import Message, Receive, Scope, Send

if TYPE_CHECKING:
    from dartle.web.formparsers import FormData, FormLimits

__all__ = ["ClientDisconnect", "HTTPConnection", "Request", "parse_cookies"]


async def _receive_nothing() -> Message:
    raise RuntimeError("this connection has no receive channel")


async def _send_nothing(message: Message) -> None:
    raise RuntimeError("this connection has no send channel")


class HTTPConnection(Mapping[str, Any]):
    """What HTTP requests and WebSocket sessions share: the scope, read lazily.

    It is also a read-only mapping over the scope itself.
    """

    __slots__ = ("_cookies", "_headers", "_query_params", "_receive", "_send", "_url", "scope")

    def __init__(self, scope: Scope, receive: Receive | None = None, send: Send | None = None):
        self.scope = scope
        self._receive = receive if receive is not None else _receive_nothing
        self._send = send if send is not None else _send_nothing
        self._headers: Headers | None = None
        self._query_params: QueryParams | None = None
        self._cookies: dict[str, str] | None = None
        self._url: URL | None = None

    def __getitem__(self, key: str) -> Any:
        return self.scope[key]

    def __iter__(self) -> Any:
        return iter(self.scope)

    def __len__(self) -> int:
        return len(self.scope)

    __eq__ = object.__eq__
    __hash__ = object.__hash__

    @property
    def app(self) -> Any:
        """The application that received this request (`scope["app"]`)."""
        return self.scope.get("app")

    @property
    def url(self) -> URL:
        """The full request URL, query string included."""
        if self._url is None:
            self._url = URL(scope=self.scope)
        return self._url

    @property
    def base_url(self) -> URL:
        """The URL of the application root (root_path included), ending in '/'."""
        scope = self.scope
        root = scope.get("app_root_path", scope.get("root_path", ""))
        base = {**scope, "path": root.rstrip("/") + "/", "raw_path": None, "query_string": b""}
        return URL(scope=base)

    @property
    def headers(self) -> Headers:
        """The request headers (case-insensitive, repeats kept)."""
        if self._headers is None:
            self._headers = Headers(scope=self.scope)
        return self._headers

    @property
    def query_params(self) -> QueryParams:
        """The decoded query string."""
        if self._query_params is None:
            self._query_params = QueryParams(self.scope.get("query_string", b""))
        return self._query_params

    @property
    def path_params(self) -> dict[str, Any]:
        """Parameters captured from the route's path, converted by their convertors."""
        return self.scope.get("path_params", {})  # type: ignore[no-any-return]

    @property
    def cookies(self) -> dict[str, str]:
        """Cookies sent by the client (all Cookie headers, as HTTP/2 may split them)."""
        if self._cookies is None:
            cookies: dict[str, str] = {}
            for name, value in self.scope["headers"]:
                if name == b"cookie":
                    cookies.update(parse_cookies(value.decode("latin-1")))
            self._cookies = cookies
        return self._cookies

    @property
    def client(self) -> Address | None:
        """The peer's (host, port), when the server knows it."""
        client = self.scope.get("client")
        return None if client is None else Address(*client)

    @property
    def state(self) -> State:
        """Per-request state, starting as a shallow copy of the lifespan state."""
        return State(self.scope.setdefault("state", {}))

    def url_for(self, name: str, /, **path_params: Any) -> URL:
        """The absolute URL of route `name` with these path parameters."""
        # A mount records the outermost router in the scope; otherwise the app's.
        router = self.scope.get("router") or getattr(self.app, "router", None)
        if router is None:
            raise RuntimeError("url_for() needs the request to have gone through a router")
        path = router.url_path_for(name, **path_params)
        return URL(str(self.base_url).rstrip("/") + path)


class Request(HTTPConnection):
    """An HTTP request: the connection's metadata plus its body.

    The body can be read once as a stream (`stream()`), or whole (`body()`, cached, and
    what `json()` and `form()` build on).
    """

    __slots__ = ("_body", "_form", "_json", "_pending", "_stream_consumed")

    def __init__(self, scope: Scope, receive: Receive | None = None, send: Send | None = None) -> None:
        self.scope = scope
        self._receive = receive if receive is not None else _receive_nothing
        self._send = send if send is not None else _send_nothing
        self._headers = None
        self._query_params = None
        self._cookies = None
        self._url = None
        self._body: bytes | None = None
        self._json: Any = _UNSET
        self._form: FormData | None = None
        self._stream_consumed = False
        self._pending: list[Message] | None = None

    @property
    def method(self) -> str:
        """The request method, uppercase."""
        return self.scope["method"]  # type: ignore[no-any-return]

    @property
    def receive(self) -> Receive:
        """The raw ASGI receive channel."""
        return self._receive

    async def stream(self) -> AsyncIterator[bytes]:
        """The body, chunk by chunk as it arrives (readable once).

        Raises ClientDisconnect if the client goes away before the end.
        """
        if self._body is not None:
            yield self._body
            yield b""
            return
        if self._stream_consumed:
            raise RuntimeError("the request body has already been consumed")
        self._stream_consumed = True
        while True:
            message = await self._next_message()
            kind = message["type"]
            if kind == "http.request":
                body = message.get("body", b"")
                more = message.get("more_body", False)
                if not more:
                    self.scope[BODY_DONE_KEY] = True
                if body:
                    yield body
                if not more:
                    break
            elif kind == "http.disconnect":
                self.scope[_DISCONNECTED_KEY] = True
                raise ClientDisconnect()
        yield b""

    async def body(self) -> bytes:
        """The whole body (read once, then cached)."""
        if self._body is None:
            chunks = [chunk async for chunk in self.stream()]
            self._body = b"".join(chunks)
        return self._body

    async def json(self) -> Any:
        """The body parsed as JSON; malformed JSON is a 400 naming the problem."""
        if self._json is _UNSET:
            body = await self.body()
            try:
                self._json = json.loads(body)
            except UnicodeDecodeError as exc:
                raise HTTPException(400, f"Malformed JSON body: not valid UTF-8 ({exc.reason})") from exc
            except json.JSONDecodeError as exc:
                raise HTTPException(400, f"Malformed JSON body: {exc}") from exc
        return self._json

    async def form(self, *, limits: FormLimits | None = None) -> FormData:
        """The body parsed as a form (urlencoded or multipart), cached.

        Uploads larger than the spool size go to a temporary file. Exceeding `limits`
        (fields, files, part size) is a 400/413 HTTPException; malformed bodies are 400.
        """
        if self._form is None:
            from dartle.web.formparsers import parse_form

            self._form = await parse_form(self, limits)
        return self._form

    async def close(self) -> None:
        """Close any uploaded files of a parsed form."""
        if self._form is not None:
            await self._form.close()

    async def is_disconnected(self) -> bool:
        """Whether the client has gone away (checked without waiting)."""
        if self.scope.get(_DISCONNECTED_KEY):
            return True
        task = asyncio.ensure_future(self._next_message())
        # One loop iteration is enough for an event the server already queued.
        await asyncio.sleep(0)
        if not task.done():
            task.cancel()
            await asyncio.wait((task,))
            return False
        message = task.result()
        if message["type"] == "http.disconnect":
            self.scope[_DISCONNECTED_KEY] = True
            return True
        # A body chunk: keep it for whoever reads the body next.
        if self._pending is None:
            self._pending = []
        self._pending.append(message)
        return False

    def downstream_receive(self) -> Receive:
        """A receive channel for another ASGI app answering this request.

        If the body was already read here, it is replayed as one http.request event.
        """
        body = self._body
        if body is None:
            return self._next_message
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await self._next_message()

        return replay

    async def _next_message(self) -> Message:
        pending = self._pending
        if pending:
            return pending.pop(0)
        return await self._receive()


_UNSET: Any = object()
_DISCONNECTED_KEY = "dartle.disconnected"


def parse_cookies(header: str) -> dict[str, str]:
    """Parse a Cookie header as browsers send it (lenient, last value of a name wins)."""
    cookies: dict[str, str] = {}
    for chunk in header.split(";"):
        if "=" in chunk:
            key, value = chunk.split("=", 1)
        else:
            # Some clients send bare values; they are keyed by the empty string.
            key, value = "", chunk
        key = key.strip()
        value = value.strip()
        if key or value:
            cookies[key] = _unquote(value)
    return cookies
