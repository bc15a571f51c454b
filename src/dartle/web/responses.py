"""HTTP responses: each one is an ASGI app that sends itself.

A response renders its body and its raw header list once, in the constructor, so
sending it is two `send` calls. `headers` is a `MutableHeaders` view over that same
list, for code (middleware, handlers) that edits it afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, Iterable, Mapping
from datetime import datetime
from email.utils import format_datetime, formatdate
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from pydantic_core import to_json

from dartle.asgi.concurrency import iterate_in_threadpool
from dartle.web.background import BackgroundTask
from dartle.web.datastructures import URL, MutableHeaders
from dartle.web.types import Receive, Scope, Send

if TYPE_CHECKING:
    from dartle.web.fileresponse import FileResponse

__all__ = [
    "FileResponse",
    "HTMLResponse",
    "JSONResponse",
    "PlainTextResponse",
    "RedirectResponse",
    "Response",
    "StreamingResponse",
    "render_value",
]

# Responses to these carry no body, so they carry no Content-Length either.
_NO_BODY_STATUS = frozenset({204, 304})
# Set by Request once the final http.request message has been read (see StreamingResponse).
BODY_DONE_KEY = "dartle.request_body_done"


_CONTENT_TYPES: dict[tuple[str, str], bytes] = {}
# Content-Length fields of small bodies, made once: formatting one costs more than the
# rest of a small response's headers.
_LENGTHS_CACHED = 2048
_LENGTHS = [(b"content-length", b"%d" % size) for size in range(_LENGTHS_CACHED)]


def _content_type(media_type: str, charset: str) -> bytes:
    """The Content-Type value (text types get a charset), cached: it is on every response."""
    key = (media_type, charset)
    value = _CONTENT_TYPES.get(key)
    if value is None:
        text = media_type
        if text.startswith("text/") and "charset=" not in text.lower():
            text += "; charset=" + charset
        value = text.encode("latin-1")
        if len(_CONTENT_TYPES) < 512:
            _CONTENT_TYPES[key] = value
    return value


class Response:
    """A response with a complete body (bytes, or str encoded with `charset`).

    `headers` given here are sent as they are; Content-Length and Content-Type are
    added unless present. Subclasses set the class attribute `media_type` and may
    override `render()` to turn their content into bytes.
    """

    media_type: str | None = None
    charset: str = "utf-8"

    def __init__(
        self,
        content: Any = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        self.status_code = status_code
        if media_type is not None:
            self.media_type = media_type
        self.background = background
        self.body = self.render(content)
        self.init_headers(headers)

    def render(self, content: Any) -> bytes:
        """Turn `content` into the body bytes."""
        if type(content) is str:
            return content.encode(self.charset)
        if content is None:
            return b""
        if isinstance(content, (bytes, memoryview)):
            return bytes(content)
        return content.encode(self.charset)  # type: ignore[no-any-return]

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        """Build `raw_headers` from `headers`, adding Content-Length and Content-Type."""
        body: bytes | None = getattr(self, "body", None)
        media_type = self.media_type
        if headers is None:
            raw: list[tuple[bytes, bytes]] = []
            has_length = has_type = False
        else:
            raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
            names = {k for k, _ in raw}
            has_length = b"content-length" in names
            has_type = b"content-type" in names
        status = self.status_code
        if body is not None and not has_length and status >= 200 and status not in _NO_BODY_STATUS:
            size = len(body)
            raw.append(_LENGTHS[size] if size < _LENGTHS_CACHED else (b"content-length", b"%d" % size))
        if media_type is not None and not has_type:
            raw.append((b"content-type", _content_type(media_type, self.charset)))
        self.raw_headers = raw
        self._headers: MutableHeaders | None = None

    @property
    def headers(self) -> MutableHeaders:
        """The response headers; edits change `raw_headers` in place."""
        if self._headers is None:
            self._headers = MutableHeaders(raw=self.raw_headers)
        return self._headers

    def set_cookie(
        self,
        key: str,
        value: str = "",
        max_age: int | None = None,
        expires: datetime | str | int | None = None,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: Literal["lax", "strict", "none"] | None = "lax",
        partitioned: bool = False,
    ) -> None:
        """Add a Set-Cookie header (RFC 6265; `partitioned` is CHIPS).

        `expires` is a datetime, an HTTP date string, or seconds from now.
        """
        self.raw_headers.append(
            (
                b"set-cookie",
                format_set_cookie(
                    key,
                    value,
                    max_age=max_age,
                    expires=expires,
                    path=path,
                    domain=domain,
                    secure=secure,
                    httponly=httponly,
                    samesite=samesite,
                    partitioned=partitioned,
                ).encode("latin-1"),
            )
        )

    def delete_cookie(
        self,
        key: str,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: Literal["lax", "strict", "none"] | None = "lax",
        partitioned: bool = False,
    ) -> None:
        """Tell the client to drop cookie `key` (same path and domain as when set)."""
        self.set_cookie(
            key,
            max_age=0,
            expires=0,
            path=path,
            domain=domain,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
            partitioned=partitioned,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body})
        if self.background is not None:
            await self.background()


class HTMLResponse(Response):
    """A text/html response."""

    media_type = "text/html"


class PlainTextResponse(Response):
    """A text/plain response."""

    media_type = "text/plain"


class JSONResponse(Response):
    """`content` serialised to JSON by pydantic-core (models, dataclasses, datetimes...)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return to_json(content)


class RedirectResponse(Response):
    """A redirect to `url` (307 by default, so the method and body are kept)."""

    def __init__(
        self,
        url: str | URL,
        status_code: int = 307,
        headers: Mapping[str, str] | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        super().__init__(content=b"", status_code=status_code, headers=headers, background=background)
        self.raw_headers.append((b"location", quote(str(url), safe=":/%#?=@[]!$&'()*+,;~").encode("latin-1")))


ContentStream = AsyncIterable[str | bytes] | Iterable[str | bytes]


class StreamingResponse(Response):
    """A response whose body comes from an iterator, sent chunk by chunk.

    Sync iterators are advanced in the thread pool. The stream stops (and the iterator
    is closed) as soon as the client disconnects: a watcher task listens for
    `http.disconnect` while the body is produced, once the request body is known to be
    consumed (so the watcher never steals body chunks from the handler).
    """

    body_iterator: AsyncIterable[str | bytes]

    def __init__(
        self,
        content: ContentStream,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        if isinstance(content, AsyncIterable):
            self.body_iterator = content
        else:
            self.body_iterator = iterate_in_threadpool(content)
        self.status_code = status_code
        if media_type is not None:
            self.media_type = media_type
        self.background = background
        self.body = None  # type: ignore[assignment]
        self.init_headers(headers)

    async def stream(self, send: Send) -> None:
        """Send the start event, every chunk, then the closing empty body."""
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        charset = self.charset
        async for chunk in self.body_iterator:
            if isinstance(chunk, str):
                chunk = chunk.encode(charset)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        completed = False
        try:
            if scope.get("type") == "http" and _may_watch(scope):
                completed = await self._stream_watching(receive, send)
            else:
                await self.stream(send)
                completed = True
        except OSError:
            # ASGI 2.4: send() on a closed connection raises OSError; the client left.
            completed = False
        finally:
            await _aclose(self.body_iterator)
        if completed and self.background is not None:
            await self.background()

    async def _stream_watching(self, receive: Receive, send: Send) -> bool:
        loop = asyncio.get_running_loop()
        streamer = loop.create_task(self.stream(send))
        watcher = loop.create_task(_wait_for_disconnect(receive))
        try:
            await asyncio.wait((streamer, watcher), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not watcher.done():
                watcher.cancel()
            if not streamer.done():
                streamer.cancel()
            # Both children finish before we return, whatever happened to us.
            await asyncio.gather(streamer, watcher, return_exceptions=True)
        if streamer.cancelled():
            return False
        exc = streamer.exception()
        if exc is not None:
            raise exc
        return True


def _may_watch(scope: Scope) -> bool:
    if scope.get(BODY_DONE_KEY):
        return True
    # A request that declares no body can only send an empty http.request first,
    # which the watcher may swallow without anyone missing it.
    for name, value in scope["headers"]:
        if name == b"content-length":
            return bool(value.strip() == b"0")
        if name == b"transfer-encoding":
            return False
    return scope.get("http_version") != "2" or scope.get("method") in ("GET", "HEAD")


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _aclose(iterator: Any) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()


# ---------------------------------------------------------------------------
# Cookies
# ---------------------------------------------------------------------------

# RFC 6265 cookie-octet: printable ASCII except space, DQUOTE, comma, semicolon, backslash.
_COOKIE_OCTETS = frozenset(chr(c) for c in range(0x21, 0x7F)) - set('",;\\')
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _quote_cookie_value(value: str) -> str:
    if all(c in _COOKIE_OCTETS for c in value):
        return value
    # The quoted form Python's http.cookies reads back: backslash escapes, octal for
    # anything outside printable ASCII (encoded as UTF-8 first).
    out = []
    for byte in value.encode("utf-8"):
        char = chr(byte)
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def format_set_cookie(
    key: str,
    value: str = "",
    *,
    max_age: int | None = None,
    expires: datetime | str | int | None = None,
    path: str | None = "/",
    domain: str | None = None,
    secure: bool = False,
    httponly: bool = False,
    samesite: str | None = "lax",
    partitioned: bool = False,
) -> str:
    """The value of one Set-Cookie header."""
    if not key or any(c not in _TOKEN_CHARS for c in key):
        raise ValueError(f"invalid cookie name {key!r}")
    parts = [f"{key}={_quote_cookie_value(value)}"]
    if expires is not None:
        if isinstance(expires, datetime):
            parts.append("Expires=" + format_datetime(expires, usegmt=True))
        elif isinstance(expires, int):
            import time

            parts.append("Expires=" + formatdate(time.time() + expires, usegmt=True))
        else:
            parts.append("Expires=" + expires)
    if max_age is not None:
        parts.append(f"Max-Age={int(max_age)}")
    if domain is not None:
        parts.append("Domain=" + domain)
    if path is not None:
        parts.append("Path=" + path)
    if secure:
        parts.append("Secure")
    if httponly:
        parts.append("HttpOnly")
    if samesite is not None:
        if samesite.lower() not in ("strict", "lax", "none"):
            raise ValueError("samesite must be 'strict', 'lax' or 'none'")
        parts.append("SameSite=" + samesite.capitalize())
    if partitioned:
        if not secure:
            raise ValueError("a partitioned cookie must also be secure")
        parts.append("Partitioned")
    return "; ".join(parts)


# ---------------------------------------------------------------------------
# Handler return values
# ---------------------------------------------------------------------------


def render_value(value: Any) -> Response:
    """The response for a handler's plain return value.

    str becomes text/plain, bytes application/octet-stream, anything else (dict, list,
    pydantic model, None...) JSON, as FastAPI does.
    """
    if isinstance(value, Response):
        return value
    if isinstance(value, str):
        return PlainTextResponse(value)
    if isinstance(value, bytes):
        return Response(value, media_type="application/octet-stream")
    return JSONResponse(value)


def __getattr__(name: str) -> Any:
    # FileResponse (dartle.web.fileresponse) subclasses Response: importing it here
    # lazily lets either module be imported first.
    if name == "FileResponse":
        from dartle.web.fileresponse import FileResponse

        return FileResponse
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
