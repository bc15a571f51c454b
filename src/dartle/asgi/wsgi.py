"""Serve a WSGI application (Flask, Django, ...) as an ASGI application (PEP 3333).

    from dartle.asgi.wsgi import WSGIMiddleware
    app = WSGIMiddleware(flask_app)          # or: dartle run --interface wsgi module:app

Each request runs, from the call of the WSGI app to the `close()` of its response
iterable, in one thread of the bounded pool of `dartle.asgi.concurrency`: WSGI code may
keep per-thread state (Django's database connections) for the whole request, and a
burst of slow requests queues for a thread instead of starting threads without end.

That thread and the event loop meet in an `_Exchange`:

- response messages go thread -> loop through an outbox; the thread does not wait for
  each one to be sent, only when more than `RESPONSE_HIGH_WATER` bytes are waiting for
  the socket (backpressure: a client that stops reading stalls the WSGI app, not memory);
- request body chunks go loop -> thread one at a time, when `wsgi.input` needs them, so
  a body is never read whole before the app runs and memory holds at most one chunk;
- when the client leaves or the request is cancelled the exchange is closed, and the
  thread's next read or write raises `ClientDisconnected` (an `OSError`), so the app
  unwinds and `close()` still runs.

The loop is woken only when the thread has something new (one `call_soon_threadsafe`
per batch of messages, not per message).
"""

from __future__ import annotations

import asyncio
import io
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import IO, Any, Protocol

from dartle.asgi.concurrency import submit_to_thread
from dartle.asgi.types import Message, Receive, Scope, Send

__all__ = [
    "ClientDisconnected",
    "FileWrapper",
    "RequestBodyTooLarge",
    "WSGIApp",
    "WSGIMiddleware",
    "build_environ",
]

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


class StartResponse(Protocol):
    def __call__(
        self,
        status: str,
        headers: list[tuple[str, str]],
        # (None, None, None) too, as typeshed's WSGI protocol allows (Flask's apps expect it)
        exc_info: ExcInfo | tuple[None, None, None] | None = None,
        /,
    ) -> Callable[[bytes], None]: ...


WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

# Response bytes a WSGI app may produce ahead of the socket before its thread waits.
RESPONSE_HIGH_WATER = 256 * 1024

class ClientDisconnected(OSError):
    """Raised in the WSGI thread when the client left (or the request was cancelled)."""


class RequestBodyTooLarge(OSError):
    """Raised in the WSGI thread when the request body went past `max_body_size`."""


class FileWrapper:
    """`wsgi.file_wrapper`: iterate a file in blocks; `close()` closes the file (PEP 3333)."""

    def __init__(self, filelike: IO[bytes], blksize: int = 64 * 1024) -> None:
        self.filelike = filelike
        self.blksize = blksize

    def __iter__(self) -> Iterator[bytes]:
        read = self.filelike.read
        while block := read(self.blksize):
            yield block

    def close(self) -> None:
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


class WSGIMiddleware:
    """An ASGI app that runs the WSGI app `app` in the bounded thread pool.

    max_body_size: largest request body in bytes; a `Content-Length` above it is
        answered 413 before the app runs, and a chunked body that grows past it is cut
        off with a 413 (the app's read raises `RequestBodyTooLarge`). None: no limit
        here (the server's --max-body-size still applies). The body is streamed to the
        app either way, never buffered whole.
    errors: the `wsgi.errors` stream (default: sys.stderr).

    Lifespan events are answered (WSGI has no lifespan) and WebSocket connections are
    refused with 403, so any ASGI server can serve the result.
    """

    def __init__(
        self, app: WSGIApp, *, max_body_size: int | None = None, errors: IO[str] | None = None
    ) -> None:
        if max_body_size is not None and max_body_size < 0:
            raise ValueError(f"max_body_size must not be negative, not {max_body_size}")
        self.app = app
        self.max_body_size = max_body_size
        self.errors = errors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await _lifespan(receive, send)
        elif kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1000})
        else:
            raise ValueError(f"WSGIMiddleware cannot serve a {kind!r} scope")

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        first = await receive()
        if first["type"] != "http.request":
            return  # the client left before the request began
        body: bytes = first.get("body", b"")
        more_body: bool = first.get("more_body", False)
        limit = self.max_body_size
        if limit is not None:
            declared = _declared_length(scope)
            if (declared is not None and declared > limit) or len(body) > limit:
                await _refuse_too_large(send, limit)
                return
        exchange = _Exchange(asyncio.get_running_loop(), self.app, limit, len(body), more_body)
        stream: Any = io.BytesIO(body) if not more_body else _InputStream(exchange, body)
        environ = build_environ(scope, stream, self.errors if self.errors is not None else sys.stderr)
        await exchange.serve(environ, receive, send)


class _Exchange:
    """One request's meeting point between the event loop and its WSGI thread."""

    __slots__ = (
        "app",
        "body_received",
        "closed",
        "error",
        "event",
        "finished",
        "headers",
        "headers_sent",
        "inbox",
        "limit",
        "lock",
        "loop",
        "more_body",
        "outbox",
        "status",
        "thread_waiting",
        "unsent",
        "wake_pending",
        "wanted",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        app: WSGIApp,
        limit: int | None,
        received: int,
        more_body: bool,
    ) -> None:
        self.loop = loop
        self.app = app
        self.limit = limit
        self.lock = threading.Condition(threading.Lock())
        self.event = asyncio.Event()
        # shared, under `lock`
        self.outbox: list[Message] = []
        self.unsent = 0  # body bytes in the outbox or being sent
        self.wake_pending = False  # a wake-up of the loop is already on its way
        self.thread_waiting = False  # the thread waits for `unsent` to drop
        self.wanted = False  # the thread waits for a request body chunk
        self.inbox = b""
        self.more_body = more_body
        self.closed: OSError | None = None  # set: the thread must stop at its next read/write
        self.finished = False
        self.error: BaseException | None = None
        self.body_received = received
        # the thread's own response state
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_sent = False

    # -- the event loop's side -------------------------------------------------------------

    async def serve(self, environ: dict[str, Any], receive: Receive, send: Send) -> None:
        submit_to_thread(self._run, environ)
        response_started = False
        try:
            while True:
                await self.event.wait()
                self.event.clear()
                with self.lock:
                    batch, self.outbox = self.outbox, []
                    self.wake_pending = False
                    wanted = self.wanted
                    finished = self.finished
                if batch:
                    sent = 0
                    if self.closed is None:
                        try:
                            for message in batch:
                                await send(message)
                                sent += len(message.get("body", b""))
                            response_started = True
                        except OSError:
                            self.close(ClientDisconnected("the client disconnected"))
                    with self.lock:
                        self.unsent = 0 if self.closed is not None else self.unsent - sent
                        if self.thread_waiting:
                            self.lock.notify_all()
                if wanted:
                    await self._deliver_body(receive, send, response_started)
                if finished:
                    break
        except BaseException:
            self.close(ClientDisconnected("the request was cancelled"))
            raise
        # Once we closed the exchange (client gone, body too large) the app's error is only
        # the echo of that; otherwise it is the app's, and the server answers 500 or aborts.
        if self.error is not None and self.closed is None:
            raise self.error

    async def _deliver_body(self, receive: Receive, send: Send, response_started: bool) -> None:
        """Fetch the next request body chunk for the thread (or answer 413 past the limit)."""
        if self.closed is not None:
            return
        message = await receive()
        if message["type"] != "http.request":
            self.close(ClientDisconnected("the client disconnected"))
            return
        chunk: bytes = message.get("body", b"")
        self.body_received += len(chunk)
        limit = self.limit
        if limit is not None and self.body_received > limit:
            self.close(RequestBodyTooLarge(f"request body larger than the limit of {limit} bytes"))
            if response_started:
                raise RequestBodyTooLarge(f"request body larger than the limit of {limit} bytes")
            await _refuse_too_large(send, limit)
            return
        with self.lock:
            self.inbox = chunk
            self.more_body = message.get("more_body", False)
            self.wanted = False
            self.lock.notify_all()

    def close(self, reason: OSError) -> None:
        """Stop the thread at its next read or write (it raises `reason`)."""
        with self.lock:
            if self.closed is None:
                self.closed = reason
            self.lock.notify_all()

    # -- the worker thread's side ----------------------------------------------------------

    def _wake_loop(self) -> None:
        # called with the lock released; a closed loop means the server is gone
        try:
            self.loop.call_soon_threadsafe(self.event.set)
        except RuntimeError:
            self.close(ClientDisconnected("the event loop is closed"))

    def _run(self, environ: dict[str, Any]) -> None:
        try:
            if self.closed is None:
                self._call_app(environ)
        except BaseException as exc:
            self.error = exc
        finally:
            with self.lock:
                self.finished = True
                self.wake_pending = True
            self._wake_loop()

    def _call_app(self, environ: dict[str, Any]) -> None:
        result = self.app(environ, self.start_response)
        try:
            if type(result) is list or type(result) is tuple:
                chunks = [chunk for chunk in result if chunk]
                for chunk in chunks[:-1]:
                    self.write(chunk)
                self._end(_as_bytes(chunks[-1]) if chunks else b"")
            else:
                for chunk in result:
                    if chunk:
                        self.write(chunk)
                self._end(b"")
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: ExcInfo | tuple[None, None, None] | None = None,
    ) -> Callable[[bytes], None]:
        """The `start_response` callable of PEP 3333."""
        if exc_info is not None and exc_info[1] is not None:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # break the frame <-> traceback cycle
        elif self.status is not None:
            raise RuntimeError(
                "start_response() called a second time without exc_info (PEP 3333 allows "
                "that only to replace the headers of an error response)"
            )
        self.status = _parse_status(status)
        self.headers = _encode_headers(headers)
        return self.write

    def write(self, data: bytes) -> None:
        """Send a body chunk (also the `write()` callable returned by start_response)."""
        if type(data) is not bytes:
            data = _as_bytes(data)
        if not data:
            return
        if self.headers_sent:
            self._emit(({"type": "http.response.body", "body": data, "more_body": True},), len(data))
        else:
            self._emit((self._start(), {"type": "http.response.body", "body": data, "more_body": True}),
                       len(data))

    def _end(self, last: bytes) -> None:
        final = {"type": "http.response.body", "body": last, "more_body": False}
        if self.headers_sent:
            self._emit((final,), len(last))
        else:
            self._emit((self._start(), final), len(last))

    def _start(self) -> Message:
        if self.status is None:
            raise RuntimeError("the WSGI app sent a response body before calling start_response()")
        self.headers_sent = True
        return {"type": "http.response.start", "status": self.status, "headers": self.headers}

    def _emit(self, messages: tuple[Message, ...], size: int) -> None:
        lock = self.lock
        with lock:
            if self.closed is not None:
                raise self.closed
            self.outbox.extend(messages)
            self.unsent += size
            wake = not self.wake_pending
            self.wake_pending = True
            full = self.unsent > RESPONSE_HIGH_WATER
        if wake:
            self._wake_loop()
        if full:
            with lock:
                self.thread_waiting = True
                while self.unsent > RESPONSE_HIGH_WATER and self.closed is None:
                    lock.wait()
                self.thread_waiting = False
                if self.closed is not None:
                    raise self.closed

    def read_chunk(self) -> bytes:
        """The next request body chunk (b"" at the end), waiting for the loop to fetch it."""
        lock = self.lock
        with lock:
            if self.closed is not None:
                raise self.closed
            if not self.more_body:
                return b""
            self.wanted = True
            wake = not self.wake_pending
            self.wake_pending = True
        if wake:
            self._wake_loop()
        with lock:
            while self.wanted and self.closed is None:
                lock.wait()
            if self.closed is not None:
                raise self.closed
            chunk, self.inbox = self.inbox, b""
            return chunk


class _InputStream:
    """`wsgi.input` for a body still arriving: reads pull chunks from the loop on demand."""

    def __init__(self, exchange: _Exchange, first: bytes) -> None:
        self._exchange = exchange
        self._buffer = bytearray(first)
        self._eof = False

    def _fill(self) -> bool:
        """Append the next chunk to the buffer; False at the end of the body."""
        while not self._eof:
            chunk = self._exchange.read_chunk()
            if chunk:
                self._buffer += chunk
                return True
            if not self._exchange.more_body:
                self._eof = True
        return False

    def read(self, size: int | None = -1) -> bytes:
        buffer = self._buffer
        if size is None or size < 0:
            while self._fill():
                pass
            size = len(buffer)
        else:
            while len(buffer) < size and self._fill():
                pass
        data = bytes(buffer[:size])
        del buffer[:size]
        return data

    def readline(self, size: int | None = -1) -> bytes:
        buffer = self._buffer
        searched = 0
        while True:
            newline = buffer.find(b"\n", searched)
            if newline >= 0:
                end = newline + 1
                break
            if size is not None and 0 <= size <= len(buffer):
                end = size
                break
            searched = len(buffer)
            if not self._fill():
                end = len(buffer)
                break
        if size is not None and size >= 0:
            end = min(end, size)
        data = bytes(buffer[:end])
        del buffer[:end]
        return data

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line


def build_environ(scope: Scope, stream: Any, errors: IO[str]) -> dict[str, Any]:
    """The WSGI environ for an ASGI HTTP scope (PEP 3333; strings are latin-1 "native")."""
    root_path: str = scope.get("root_path", "")
    path: str = scope["path"]
    if root_path and path.startswith(root_path):
        path = path[len(root_path):]
    scheme = scope.get("scheme") or "http"
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": _native(root_path),
        "PATH_INFO": _native(path),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_PROTOCOL": "HTTP/" + scope.get("http_version", "1.1"),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": stream,
        "wsgi.errors": errors,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,  # reading to EOF is safe even without Content-Length
        "wsgi.file_wrapper": FileWrapper,
    }
    if scheme == "https":
        environ["HTTPS"] = "on"
    host_header = None
    for raw_name, raw_value in scope["headers"]:
        key = _ENVIRON_KEYS.get(raw_name)
        if key is None:
            key = _environ_key(raw_name)
            if key is None:
                continue
        value = raw_value.decode("latin-1")
        if key == "HTTP_HOST":
            host_header = value
        if key in environ:
            # repeated fields are one comma-separated list (RFC 9110 5.3); Cookie uses "; "
            value = environ[key] + ("; " if key == "HTTP_COOKIE" else ",") + value
        environ[key] = value
    server = scope.get("server")
    if server is not None and server[1] is not None:
        environ["SERVER_NAME"] = server[0]
        environ["SERVER_PORT"] = str(server[1])
    else:  # a Unix socket, or no address known: take it from Host, as the request named us
        name, _, port = (host_header or "localhost").rpartition(":")
        if not name or "]" in port:
            name, port = host_header or "localhost", ""
        environ["SERVER_NAME"] = name
        environ["SERVER_PORT"] = port or ("443" if scheme == "https" else "80")
    client = scope.get("client")
    if client is not None:
        environ["REMOTE_ADDR"] = client[0]
        environ["REMOTE_PORT"] = str(client[1])
    return environ


def _native(text: str) -> str:
    """A PEP 3333 "native string": the UTF-8 bytes of `text`, one char per byte."""
    return text if text.isascii() else text.encode("utf-8", "surrogateescape").decode("latin-1")


_ENVIRON_KEYS: dict[bytes, str] = {b"content-type": "CONTENT_TYPE", b"content-length": "CONTENT_LENGTH"}


def _environ_key(raw_name: bytes) -> str | None:
    name = raw_name.decode("latin-1").lower()
    if "_" in name:
        # Both "X-Forwarded-For" and "X_Forwarded_For" would become HTTP_X_FORWARDED_FOR:
        # drop the underscore spelling, or a client could forge what a proxy vouches for.
        return None
    key = "HTTP_" + name.upper().replace("-", "_")
    if len(_ENVIRON_KEYS) < 512:
        _ENVIRON_KEYS[raw_name] = key
    return key


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _parse_status(status: str) -> int:
    if type(status) is not str:
        raise TypeError(f"WSGI status must be a str such as '200 OK', not {type(status).__name__}")
    code = status[:3]
    well_formed = code.isascii() and code.isdigit() and (len(status) == 3 or status[3] == " ")
    if not well_formed or not 100 <= int(code) <= 999:
        raise ValueError(f"WSGI status must look like '200 OK', not {status!r}")
    return int(code)


def _encode_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    encoded = []
    for item in headers:
        try:
            name, value = item
        except (TypeError, ValueError):
            raise TypeError(f"WSGI response header must be a (name, value) tuple, not {item!r}") from None
        if type(name) is not str or type(value) is not str:
            raise TypeError(f"WSGI response header {item!r}: name and value must be str")
        if "\r" in value or "\n" in value or "\0" in value:
            raise ValueError(f"WSGI response header {name!r} has a CR, LF or NUL in its value")
        try:
            encoded.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        except UnicodeEncodeError:
            raise ValueError(
                f"WSGI response header {name!r}: {value!r} is not latin-1 (PEP 3333 native strings)"
            ) from None
    return encoded


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"WSGI response chunks must be bytes, not {type(data).__name__}")


async def _refuse_too_large(send: Send, limit: int) -> None:
    body = f"Request body larger than the limit of {limit} bytes".encode()
    await send({
        "type": "http.response.start",
        "status": 413,
        "headers": [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    })
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
