"""Compress response bodies with gzip, and brotli or zstd when those are installed.

The coding is negotiated from the request's Accept-Encoding (q-values honoured, `q=0`
refuses a coding, `*` stands for codings not listed). A response is left alone when
it already has a Content-Encoding, is a partial (206) or body-less response, says
`Cache-Control: no-transform`, is a server-sent event stream or an already compressed
media type (images, audio, video, archives), or is smaller than `minimum_size`.

A response sent in one piece is compressed in one piece and gets the new
Content-Length. A streamed response (`more_body=True`) is compressed chunk by chunk
and every chunk is flushed, so the client receives each one when the app sends it
instead of when the compressor's buffer fills; its Content-Length is dropped.
"""

from __future__ import annotations

import importlib
import re
import zlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from dartle.web.datastructures import Headers, MutableHeaders
from dartle.web.types import ASGIApp, Message, Receive, Scope, Send


def _optional(name: str) -> Any:
    # Imported by name so that type checking works whether or not they are installed.
    try:
        return importlib.import_module(name)
    except ImportError:  # pragma: no cover - depends on the environment
        return None


brotli = _optional("brotli")
zstandard = _optional("zstandard")

__all__ = ["GZipMiddleware", "available_encodings", "negotiate_encoding"]


class Encoder(Protocol):
    """One response body's compressor."""

    def compress(self, data: bytes) -> bytes:
        """Compress `data` and flush, so that everything given so far can be decoded."""

    def finish(self, data: bytes) -> bytes:
        """Compress the last piece `data` and end the stream."""


class _GzipEncoder:
    __slots__ = ("_z",)

    def __init__(self, level: int) -> None:
        # wbits 16+15: a gzip header and trailer around a deflate stream.
        self._z = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)

    def compress(self, data: bytes) -> bytes:
        return self._z.compress(data) + self._z.flush(zlib.Z_SYNC_FLUSH)

    def finish(self, data: bytes) -> bytes:
        return self._z.compress(data) + self._z.flush(zlib.Z_FINISH)


class _BrotliEncoder:
    __slots__ = ("_c",)

    def __init__(self, quality: int) -> None:
        self._c = brotli.Compressor(quality=quality)

    def compress(self, data: bytes) -> bytes:
        return bytes(self._c.process(data) + self._c.flush())

    def finish(self, data: bytes) -> bytes:
        return bytes(self._c.process(data) + self._c.finish())


class _ZstdEncoder:
    __slots__ = ("_c",)

    def __init__(self, level: int) -> None:
        self._c = zstandard.ZstdCompressor(level=level).compressobj()

    def compress(self, data: bytes) -> bytes:
        return bytes(self._c.compress(data) + self._c.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK))

    def finish(self, data: bytes) -> bytes:
        return bytes(self._c.compress(data) + self._c.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH))


def available_encodings() -> tuple[str, ...]:
    """The codings this installation can produce, best first."""
    found = []
    if zstandard is not None:
        found.append("zstd")
    if brotli is not None:
        found.append("br")
    found.append("gzip")
    return tuple(found)


# RFC 9110 section 12.4.2: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
_QVALUE = re.compile(r"^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$")


def negotiate_encoding(accept_encoding: str, offered: Sequence[str]) -> str | None:
    """The coding of `offered` (best first) to use for `accept_encoding`, or None.

    None means identity: no coding offered is acceptable, or the client explicitly
    prefers identity to all of them. A malformed entry counts as not acceptable.
    """
    qualities: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        if coding == "x-gzip":  # RFC 9110 section 8.4.1.3: treat as gzip
            coding = "gzip"
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                value = value.strip()
                q = float(value) if _QVALUE.match(value) else 0.0
        qualities[coding] = max(q, qualities.get(coding, 0.0))
    star = qualities.get("*", 0.0)
    best, best_q = None, 0.0
    for coding in offered:
        q = qualities.get(coding, star)
        if q > best_q:
            best, best_q = coding, q
    if best is None or qualities.get("identity", star) > best_q:
        return None
    return best


# Media types whose content is already compressed: another pass costs CPU for nothing.
_INCOMPRESSIBLE_PREFIXES = ("image/", "video/", "audio/", "font/woff")
_COMPRESSIBLE_EXCEPTIONS = frozenset({"image/svg+xml", "image/bmp", "image/x-icon"})
_INCOMPRESSIBLE_TYPES = frozenset(
    {
        "application/gzip",
        "application/x-gzip",
        "application/zip",
        "application/zstd",
        "application/x-7z-compressed",
        "application/x-bzip2",
        "application/x-xz",
        "application/x-rar-compressed",
        "application/vnd.rar",
    }
)
# Statuses that carry no body (or, for 206, a body whose byte ranges refer to the
# uncompressed representation).
_SKIP_STATUSES = frozenset({204, 206, 304})


class GZipMiddleware:
    """Compress responses the client accepts compressed, with the best coding available.

    gzip is always available; `br` (package `brotli`) and `zstd` (package `zstandard`)
    are offered when importable, and preferred to gzip. `encodings` restricts or
    reorders them. `compresslevel` is gzip's level (1-9), `brotli_quality` (0-11) and
    `zstd_level` (1-22) the others'. Bodies under `minimum_size` bytes stay as they are.
    `excluded_media_types` are never compressed (server-sent events by default, so
    that no proxy between here and the browser buffers them).
    """

    def __init__(
        self,
        app: ASGIApp,
        minimum_size: int = 500,
        compresslevel: int = 6,
        *,
        encodings: Sequence[str] | None = None,
        brotli_quality: int = 4,
        zstd_level: int = 3,
        excluded_media_types: Sequence[str] = ("text/event-stream",),
    ) -> None:
        self.app = app
        self.minimum_size = minimum_size
        available = available_encodings()
        if encodings is None:
            encodings = available
        else:
            missing = [e for e in encodings if e not in available]
            if missing:
                raise ValueError(
                    f"encodings {missing} are not available here (available: {list(available)};"
                    " br needs the 'brotli' package, zstd the 'zstandard' package)"
                )
        self.encodings = tuple(encodings)
        factories: dict[str, Callable[[], Encoder]] = {
            "gzip": lambda: _GzipEncoder(compresslevel),
            "br": lambda: _BrotliEncoder(brotli_quality),
            "zstd": lambda: _ZstdEncoder(zstd_level),
        }
        self._factories = {name: factories[name] for name in self.encodings}
        self.excluded_media_types = frozenset(t.lower() for t in excluded_media_types)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        accept = Headers(scope=scope).get("accept-encoding")
        coding = negotiate_encoding(accept, self.encodings) if accept else None
        responder = _Responder(self, send, coding, scope["method"] == "HEAD")
        await self.app(scope, receive, responder)

    def compressible(self, headers: Headers, status: int) -> bool:
        """Whether a response with this status and these headers may be compressed."""
        if status < 200 or status in _SKIP_STATUSES:
            return False
        encoding = headers.get("content-encoding")
        if encoding is not None and encoding.strip().lower() != "identity":
            return False
        if "content-range" in headers:
            return False
        cache_control = headers.get("cache-control", "").lower()
        if "no-transform" in cache_control:
            return False
        media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type in self.excluded_media_types or media_type in _INCOMPRESSIBLE_TYPES:
            return False
        return not (
            media_type.startswith(_INCOMPRESSIBLE_PREFIXES) and media_type not in _COMPRESSIBLE_EXCEPTIONS
        )


# Responder states.
_PASS = 0  # forward everything unchanged
_HOLD = 1  # start held until the first body tells us the size
_STREAM = 2  # compressing a streamed body


class _Responder:
    """The `send` given to the app for one request: holds the start, then decides."""

    __slots__ = ("coding", "encoder", "head", "middleware", "send", "start", "state")

    def __init__(self, middleware: GZipMiddleware, send: Send, coding: str | None, head: bool) -> None:
        self.middleware = middleware
        self.send = send
        self.coding = coding
        self.head = head
        self.state = _PASS
        self.start: Message | None = None
        self.encoder: Encoder | None = None

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            await self._on_start(message)
        elif self.state == _HOLD:
            await self._on_first(message)
        elif self.state == _STREAM and kind == "http.response.body":
            await self._on_more(message)
        else:
            await self.send(message)

    async def _on_start(self, message: Message) -> None:
        headers = MutableHeaders(raw=list(message.get("headers", ())))
        if not self.middleware.compressible(headers, message["status"]):
            await self.send(message)
            return
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) < self.middleware.minimum_size:
            # Too small whatever the client accepts: the answer does not vary.
            await self.send(message)
            return
        # From here on the answer depends on Accept-Encoding, so caches must key on it.
        headers.add_vary_header("Accept-Encoding")
        message = {**message, "headers": headers.raw}
        if self.coding is None or self.head:
            # HEAD has no body to compress, and its headers cannot tell the compressed
            # size; it describes the identity representation.
            await self.send(message)
            return
        self.start = message
        self.state = _HOLD

    async def _on_first(self, message: Message) -> None:
        start = self.start
        assert start is not None and self.coding is not None
        self.start = None
        if message["type"] != "http.response.body":
            # pathsend, zerocopysend...: bytes we never see, sent as they are.
            self.state = _PASS
            await self.send(start)
            await self.send(message)
            return
        body: bytes = message.get("body", b"")
        more_body: bool = message.get("more_body", False)
        if not more_body and len(body) < self.middleware.minimum_size:
            self.state = _PASS
            await self.send(start)
            await self.send(message)
            return
        encoder = self.middleware._factories[self.coding]()
        headers = MutableHeaders(raw=start["headers"])
        headers["content-encoding"] = self.coding
        etag = headers.get("etag")
        if etag is not None and etag.startswith('"'):
            # The compressed bytes are another representation: a strong validator
            # must not claim they are byte-identical to the identity ones.
            headers["etag"] = "W/" + etag
        if more_body:
            del headers["content-length"]
            self.encoder = encoder
            self.state = _STREAM
            await self.send(start)
            await self.send({**message, "body": encoder.compress(body)})
        else:
            compressed = encoder.finish(body)
            headers["content-length"] = str(len(compressed))
            self.state = _PASS
            await self.send(start)
            await self.send({**message, "body": compressed})

    async def _on_more(self, message: Message) -> None:
        encoder = self.encoder
        assert encoder is not None
        body: bytes = message.get("body", b"")
        if message.get("more_body", False):
            if not body:
                return  # nothing new to flush
            await self.send({**message, "body": encoder.compress(body)})
        else:
            self.state = _PASS
            self.encoder = None
            await self.send({**message, "body": encoder.finish(body)})
