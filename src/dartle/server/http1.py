"""HTTP/1.1 framing on httptools: keep-alive, pipelining, flow control, bad input.

One `H1Connection` per TCP connection. httptools (llhttp) parses; its callbacks build the
scope and feed a `Cycle` (cycle.py), which runs the app. This module is the request side:
parsing and its limits, keep-alive, pipelining (responses in request order), pausing
reading whenever the app is not keeping up, refusing bad input, upgrades. The response
side - Content-Length vs chunked vs close-delimited, and when bytes are written - is
http1_response.py, a part of the same class.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from time import perf_counter
from typing import TYPE_CHECKING, Any

import httptools

from dartle.server import proxy
from dartle.server.cycle import DONE, EXPECT_100, HEAD_REQUEST, HTTP_10, START, TE_TRAILERS, Cycle
from dartle.server.http1_response import H1Response
from dartle.server.logs import log_request
from dartle.server.runner import Runner
from dartle.server.wire import (
    HOSTS,
    TARGETS,
    connection_addresses,
    error_response,
    http_scope_template,
    parse_target,
    target_authority,
    valid_host,
)
from dartle.server.ws_h1 import Handshake, websocket_handshake

if TYPE_CHECKING:
    from dartle.server.serve import ServerState

logger = logging.getLogger("dartle.error")

# Reading pauses when this much request body waits unread by the app.
BODY_HIGH_WATER = 256 * 1024
# Bytes that arrive while pipelined requests wait their turn are held unparsed, up to
# this much; past it reading pauses. Reading goes on below it so that a client that
# leaves is noticed (its FIN or RST) while a request is in flight.
HOLD_LIMIT = 16 * 1024
WRITE_HIGH_WATER = 64 * 1024
WRITE_LOW_WATER = 16 * 1024

_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")}
_VERSIONS = frozenset(("1.1", "1.0"))
# Request headers whose values the framing itself needs; all others only go to the scope.
_WATCHED = frozenset(
    (b"content-length", b"transfer-encoding", b"expect", b"te", b"x-forwarded-for",
     b"x-forwarded-proto", b"upgrade", b"connection", b"proxy-connection")
)
_NOTED = _WATCHED | {b"host"}  # ... and Host, which is checked but not watched


class _HeadTooLarge(Exception):
    pass


class _Stop(Exception):
    """Raised from a parser callback after the request was refused: parse no further."""


class _UpgradeBody:
    """Parser callbacks for the body of an upgrade request the server did not take.

    llhttp stops at the head of any request that asks to upgrade, body or not. When the
    upgrade is declined the request is plain HTTP, so its body is read by a parser of its
    own, primed with a head that declares the same framing, and handed to the connection.
    Whatever follows the body is not parsed: the connection closes after the response.
    """

    __slots__ = ("conn", "done")

    def __init__(self, conn: H1Connection) -> None:
        self.conn = conn
        self.done = False

    @staticmethod
    def parser(conn: H1Connection, chunked: bool, length: int) -> httptools.HttpRequestParser:
        parser = httptools.HttpRequestParser(_UpgradeBody(conn))
        parser.set_dangerous_leniencies(lenient_spaces_after_chunk_size=True)
        framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % length
        parser.feed_data(b"POST / HTTP/1.1\r\n" + framing + b"\r\n\r\n")
        return parser

    def on_message_begin(self) -> None:
        if self.done:
            raise _Stop()  # bytes after the body: not a request we will read

    def on_body(self, body: bytes) -> None:
        self.conn.on_body(body)

    def on_message_complete(self) -> None:
        self.done = True
        self.conn.on_message_complete()
        self.conn._pause_reading()


class H1Connection(H1Response, asyncio.Protocol):
    """An HTTP/1.1 connection: parser callbacks in, response bytes out."""

    __slots__ = (
        "access_log",
        "active",
        "app",
        "body_received",
        "client_addr",
        "closing",
        "common",
        "counting",
        "drain_waiter",
        "extensions",
        "field_size",
        "head_size",
        "head_tick",
        "headers",
        "held",
        "host",
        "hosts",
        "idle_tick",
        "in_head",
        "lifespan_state",
        "loop",
        "max_body",
        "max_head",
        "parser",
        "parsing",
        "pending_error",
        "pipeline",
        "proxy_trusted",
        "read_paused",
        "ready",
        "root_path",
        "runner",
        "scheme",
        "scope_template",
        "server_addr",
        "state",
        "transport",
        "url",
        "watched",
        "write_paused",
        "ws_handshake",
    )

    def __init__(self, state: ServerState) -> None:
        super().__init__(state)
        self.state = state
        config = state.config
        self.loop = state.loop
        self.app = state.app
        self.common = state.common
        self.max_head = config.max_header_size
        self.max_body = config.max_body_size
        self.root_path = config.root_path
        self.parser = httptools.HttpRequestParser(self)
        # RFC 9112 7.1.1 lets whitespace (BWS) come before a chunk extension ("3 ;x");
        # llhttp refuses it unless told. It still refuses "3 4" or "3 x", and spaces
        # before the CRLF ("3 ") are read as h11 reads them: the size, then the line end.
        self.parser.set_dangerous_leniencies(lenient_spaces_after_chunk_size=True)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.server_addr: Any = None
        self.client_addr: Any = None
        self.scheme = "http"
        self.proxy_trusted = False
        self.extensions: dict[str, Any] = {"http.response.trailers": {}, "http.response.pathsend": {}}
        # parsing state for the request being read
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.hosts = 0
        self.host = b""
        self.watched: dict[bytes, bytes] | None = None
        self.head_size = 0
        self.body_received = 0
        self.field_size = 0
        self.counting = False
        self.lifespan_state = state.lifespan_state
        self.access_log = state.access_log
        self.in_head = False
        self.head_tick = 0
        self.parsing: Cycle | None = None
        # the exchange whose response is being written; later requests queue behind it
        self.active: Cycle | None = None
        self.ready: Cycle | None = None  # active, its app to start once the read is parsed
        self.pipeline: deque[Cycle] = deque()
        self.held = bytearray()  # read while requests were queued, not parsed yet
        self.runner = Runner(state)
        self.read_paused = False
        self.write_paused = False
        self.drain_waiter: asyncio.Future[None] | None = None
        self.closing = False
        self.pending_error = b""
        self.ws_handshake: Handshake | None = None
        self.idle_tick = state.ticks

    # -- connection events ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.set_write_buffer_limits(WRITE_HIGH_WATER, WRITE_LOW_WATER)
        state = self.state
        state.connections.add(self)
        self.server_addr, self.client_addr, self.proxy_trusted = connection_addresses(
            transport, state.trusted, state.config.proxy_headers
        )
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None and state.tls is not None:
            if ssl_object.selected_alpn_protocol() == "h2":
                self._alpn_h2()  # the handshake chose HTTP/2: served by http2.py from byte one
                return
            self.scheme = "https"
            self.sendfile_ok = False  # the bytes must pass through the TLS layer
            self.extensions["tls"] = state.tls.extension(ssl_object)
        self.scope_template = http_scope_template(
            "1.1", self.server_addr, self.client_addr, self.scheme, self.root_path, self.extensions
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.deferred = b""
        self.state.connections.discard(self)
        for cycle in (self.active, self.parsing, *self.pipeline):
            if cycle is not None:
                cycle.disconnect()
        self.pipeline.clear()
        self.held.clear()
        self.active = self.parsing = self.ready = None
        self.runner.close()
        waiter = self.drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self.state.connection_closed()

    def eof_received(self) -> bool | None:
        self.flush_deferred()  # the transport closes when this returns
        return None  # close our side too; HTTP/1.1 has no half-close

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        if self.pipeline or self.held:
            self._hold(data)
            return
        if self.in_head:
            self.head_size += len(data)
            self.counting = True
        else:
            # A head that begins in this read and ends in it is no longer than the read:
            # its fields need counting only if the read is longer than the limit.
            self.counting = len(data) > self.max_head
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._upgrade_requested(data, exc.args[0])
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            if isinstance(cause, _HeadTooLarge):
                self._reject(431, "Request header fields too large")
            elif self.url == b"*" and str(exc).startswith("Pause on PRI"):
                self._http2_preface(data)  # llhttp stops right after a whole h2 preface
                return
            elif not isinstance(cause, _Stop):
                self._reject(400, f"Invalid HTTP request: {exc}")
        else:
            if self.in_head and self._head_too_large():
                self._reject(431, "Request header fields too large")
        # Apps start after the whole read is parsed, so a request that arrived complete
        # finds its body already there, and pipelined ones run back to back.
        cycle = self.ready
        if cycle is not None:
            self.ready = None
            self._run(cycle)

    def _head_too_large(self) -> bool:
        """A read ended inside a request head: is that head already over the limit?"""
        if not self.counting:
            # its fields were not counted as they came (see data_received): from now on
            # they are, starting from what the read brought
            self.field_size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
        return self.head_size > self.max_head or self.field_size > self.max_head

    def _hold(self, data: bytes) -> None:
        """Keep bytes that came while requests wait their turn, to parse once they ran.

        Parsing them now would queue more requests without bound; not reading at all
        would miss a client that leaves. Past HOLD_LIMIT reading pauses after all.
        """
        self.held += data
        if len(self.held) > HOLD_LIMIT:
            self._pause_reading()

    def _release_held(self) -> None:
        """Parse what was held, now that no request is queued (a callback of its own:
        the response that emptied the queue may be in the middle of an app's step)."""
        if self.held and not self.pipeline and not self.closing and not self.pending_error:
            data = bytes(self.held)
            self.held.clear()
            self.data_received(data)

    # -- parser callbacks -----------------------------------------------------------------

    def on_url(self, url: bytes) -> None:
        # The first piece of a request line starts a new message. (Doing this here rather
        # than in on_message_begin saves a parser callback per request; bytes that come
        # before the target are bounded by the idle timeout.)
        if self.in_head:
            url = self.url + url
        else:
            self.headers = []
            self.hosts = 0
            self.host = b""
            self.watched = None
            self.head_size = 0
            self.in_head = True
            self.head_tick = self.state.ticks
        self.url = url
        if self.counting:
            self.field_size = len(url)
            if self.field_size > self.max_head:
                raise _HeadTooLarge()

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.in_head:
            return  # trailer fields of a chunked request body: not part of the scope
        if self.counting:
            self.field_size += len(name) + len(value) + 4
            if self.field_size > self.max_head:
                raise _HeadTooLarge()
        name = name.lower()
        if value[-1:] in (b" ", b"\t"):
            value = value.rstrip(b" \t")  # llhttp strips leading whitespace, not trailing
        self.headers.append((name, value))
        if name in _NOTED:
            if name == b"host":
                self.hosts += 1
                self.host = value
                return
            if self.watched is None:
                self.watched = {}
            # a repeated field is joined as the RFC allows for list-valued fields
            old = self.watched.get(name)
            self.watched[name] = value if old is None else old + b"," + value

    def on_headers_complete(self) -> None:
        self.in_head = False
        parser = self.parser
        method_raw = parser.get_method()
        method = _METHODS.get(method_raw) or method_raw.decode("ascii")
        url = self.url
        target = TARGETS.get(url)
        if target is None:
            try:
                target = parse_target(url, self.root_path)
            except ValueError as exc:
                self._reject(400, str(exc))
                raise _Stop() from None
            if url[:1] != b"/":
                self._use_target_authority()
        host = self.host
        if self.hosts != 1 or (host not in HOSTS and not valid_host(host)):
            self._check_host()
        keep_alive = parser.should_keep_alive()
        watched = self.watched
        if watched is None and keep_alive:
            # llhttp keeps an HTTP/1.0 (or 0.9/2.0) connection alive only when a Connection
            # header asks for it, and Connection is watched: this request is HTTP/1.1.
            # (get_http_version() formats a new string per call; this path skips it.)
            version = "1.1"
        else:
            version = parser.get_http_version()
            if version not in _VERSIONS:
                self._reject(505, f"HTTP version {version} is not supported")
                raise _Stop()
        if watched is not None and b"upgrade" in watched and self.state.config.ws != "none":
            handshake = websocket_handshake(self, method, version, target)
            if handshake is not None:
                refusal = handshake.refusal
                if self.active is not None:
                    self._reject(400, "A WebSocket handshake cannot be pipelined behind a request")
                elif refusal is None:
                    self.ws_handshake = handshake  # upgraded once parsed
                    return
                else:
                    self._write(refusal)
                    self._close()
                raise _Stop()
        scope = self.scope_template.copy()  # HTTP/1.1, GET: set only when not
        scope["path"], scope["raw_path"], scope["query_string"] = target
        scope["headers"] = self.headers
        state = self.lifespan_state
        scope["state"] = state.copy() if state else {}
        cycle = Cycle(scope, self, keep_alive)
        if version != "1.1":
            scope["http_version"] = version
            cycle.flags = HTTP_10
        if method != "GET":
            scope["method"] = method
            if method == "HEAD":
                cycle.flags |= HEAD_REQUEST
        self.parsing = cycle
        if watched is not None and self._check_watched(cycle, watched, scope):
            raise _Stop()
        if self.active is None:
            self.active = cycle
            self.ready = cycle
        else:
            self.pipeline.append(cycle)

    def _check_host(self) -> None:
        """RFC 9112 3.2: exactly one valid Host in HTTP/1.1, at most one in HTTP/1.0."""
        if self.hosts > 1:
            problem = "more than one Host header"
        elif self.hosts == 1:
            problem = "an invalid Host header"
        elif self.parser.get_http_version() == "1.1":
            problem = "no Host header (HTTP/1.1 requires one)"
        else:
            return
        self._reject(400, f"Bad request: {problem}")
        raise _Stop()

    def _use_target_authority(self) -> None:
        """Absolute-form target: its authority replaces Host (RFC 9112 3.2.2)."""
        authority = target_authority(self.url)
        if authority is None:
            return
        headers = [(n, v) for n, v in self.headers if n != b"host"]
        headers.insert(0, (b"host", authority))
        self.headers = headers
        self.hosts = 1
        self.host = authority

    def _check_watched(self, cycle: Cycle, watched: dict[bytes, bytes], scope: Any) -> bool:
        """Apply the headers the framing cares about; True if the request was refused."""
        self.body_received = 0  # a request body comes with Content-Length or chunked, watched
        te = watched.get(b"transfer-encoding")
        if te is not None and te.strip().lower() != b"chunked":
            # llhttp already refused chunked-not-last; any other coding we cannot decode
            self._reject(501, "Unsupported Transfer-Encoding")
            return True
        length = watched.get(b"content-length")
        if length is not None and self.max_body is not None and int(length) > self.max_body:
            self._reject(413, f"Request body larger than the limit of {self.max_body} bytes")
            return True
        expect = watched.get(b"expect")
        if expect is not None:
            if expect.lower() == b"100-continue":
                if scope["http_version"] == "1.1":
                    cycle.flags |= EXPECT_100
            else:
                self._reject(417, "Expectation failed")
                return True
        te_header = watched.get(b"te")
        if te_header is not None and b"trailers" in te_header.lower():
            cycle.flags |= TE_TRAILERS
        if self.proxy_trusted:
            proxy.apply_forwarded(scope, watched, self.state.trusted)
        return False

    def on_body(self, body: bytes) -> None:
        cycle = self.parsing
        if cycle is None or cycle.disconnected:
            return
        cycle.feed_body(body)
        if cycle.buffered > BODY_HIGH_WATER:
            self._pause_reading()
        if self.max_body is not None:
            self.body_received += len(body)
        if self.max_body is not None and self.body_received > self.max_body:
            self._reject(413, f"Request body larger than the limit of {self.max_body} bytes")
            raise _Stop()

    def on_message_complete(self) -> None:
        cycle = self.parsing
        if cycle is not None:
            self.parsing = None
            cycle.body_complete = True
            if cycle.waiter is not None:
                cycle.feed_complete()

    # -- request lifecycle ----------------------------------------------------------------

    def _run(self, cycle: Cycle) -> None:
        if self.closing:
            return
        state = self.state
        if state.limit is not None and state.over_limit():
            cycle.state = DONE
            self._write_canned(cycle, 503, "Service Unavailable")
            return
        if self.access_log:
            cycle.start_time = perf_counter()
        state.tasks += 1
        self.runner.run(cycle)

    def _upgrade_requested(self, data: bytes, offset: int) -> None:
        # A WebSocket handshake checked in on_headers_complete takes the transport over,
        # with the bytes that followed the request (data[offset:]).
        handshake = self.ws_handshake
        if handshake is not None:
            self.ws_handshake = None
            self._hand_over()
            handshake.upgrade(self, data[offset:])
            return
        # Other upgrades are answered as plain HTTP and the connection closed after, since
        # the parser cannot go on past an upgrade - except h2c, which becomes HTTP/2 with
        # this request as its stream 1.
        if self.parsing is not None:
            self.on_message_complete()
        cycle = self.pipeline[-1] if self.pipeline else self.active
        if cycle is not None and cycle is self.ready and self.state.config.http2:
            from dartle.server.http2_switch import h2c_settings, upgrade

            settings = h2c_settings(self.scheme, self.watched, self.headers)
            if settings is not None:
                self.ready = self.active = None
                self._hand_over()
                upgrade(self, cycle, settings, data[offset:])
                return
        if cycle is not None:
            cycle.keep_alive = False
            watched = self.watched or {}
            chunked = b"transfer-encoding" in watched  # only chunked gets this far
            length = int(watched.get(b"content-length", b"0") or b"0")
            if chunked or length:
                # plain HTTP after all: its body follows the head (test_upgrade_body.py)
                cycle.body_complete = False
                self.parsing = cycle
                self.parser = _UpgradeBody.parser(self, chunked, length)
                try:
                    self.parser.feed_data(data[offset:])
                except httptools.HttpParserError as exc:
                    if not isinstance(exc.__context__, _Stop):
                        self._reject(400, f"Invalid HTTP request: {exc}")
                return
        self._pause_reading()

    def _hand_over(self) -> None:
        """The transport is about to belong to a WebSocket or HTTP/2: what this side still
        holds goes out first, and nothing more is read, written or run here."""
        self.flush_deferred()
        self.closing = True
        self.runner.close()

    def _alpn_h2(self) -> None:
        """The TLS handshake selected "h2": the connection becomes an H2Connection."""
        # imported here, off the HTTP/1 path, and because http2 imports serve, which imports us
        from dartle.server.http2_switch import take_over

        self._hand_over()
        take_over(self, b"", preface_seen=False)

    def _http2_preface(self, data: bytes) -> None:
        """HTTP/2 by prior knowledge (h2c): the connection becomes an H2Connection."""
        if not self.state.config.http2 or self.active is not None or self.pipeline:
            self._reject(505, "HTTP/2 is not served here" if not self.state.config.http2
                         else "HTTP/2 preface after an HTTP/1.1 request")
            return
        from dartle.server.http2_switch import preface_end, take_over

        self.in_head = False
        self._hand_over()
        take_over(self, data[preface_end(data) :], preface_seen=True)

    def app_done(self, cycle: Cycle) -> None:
        self.state.task_done()

    def _response_done(self, cycle: Cycle) -> None:
        """The active response is complete: log it, then serve the next request or close."""
        if self.access_log:
            log_request(cycle.scope, cycle.status, self.written, cycle.start_time)
        if cycle is not self.active:
            return
        self.active = None
        if not cycle.keep_alive or self.state.shutting_down:
            self._close()
            return
        if self.pipeline:
            cycle = self.pipeline.popleft()
            self.active = cycle
            self._run(cycle)
            if not self.pipeline:
                if self.held:
                    self.loop.call_soon(self._release_held)
                self._maybe_resume_reading()
            return
        if self.pending_error:
            self._write(self.pending_error)
            self._close()
            return
        self.idle_tick = self.state.ticks
        if self.read_paused:
            self._maybe_resume_reading()

    # -- flow control ---------------------------------------------------------------------

    def _pause_reading(self) -> None:
        if not self.read_paused and not self.closing:
            self.read_paused = True
            self.transport.pause_reading()

    def _maybe_resume_reading(self) -> None:
        if self.read_paused and not self.closing and not self.pipeline and not self.pending_error:
            parsing = self.parsing
            if parsing is None or parsing.buffered <= BODY_HIGH_WATER:
                self.read_paused = False
                self.transport.resume_reading()

    def body_consumed(self, cycle: Cycle) -> None:
        if self.read_paused:
            self._maybe_resume_reading()

    # -- refusing and closing -------------------------------------------------------------

    def force_close(self) -> None:
        """Drop the connection at once, unsent bytes included."""
        if not self.closing:
            self.closing = True
            self.deferred = b""
            self.transport.abort()

    def _reject(self, status: int, message: str) -> None:
        """Refuse bad input: answer if no response is in progress, then close."""
        logger.debug("rejecting request from %s: %d %s", self.client_addr, status, message)
        if self.closing:
            return
        failed = self.parsing
        if failed is not None:
            failed.disconnect()
        active = self.active
        if active is not None and active is not failed:
            # Earlier requests' responses are still due: they are answered, in order, and
            # the refusal comes after them - unless one of them closes the connection, in
            # which case the bad bytes came after the end and get no answer at all.
            if failed is not None and failed in self.pipeline:
                self.pipeline.remove(failed)
            last = self.pipeline[-1] if self.pipeline else active
            if last.keep_alive:
                self.pending_error = error_response(self.common, status, message)
            self._pause_reading()
            return
        if active is None or active.state == START:
            if active is not None:
                active.state = DONE
            self._write(error_response(self.common, status, message))
        self._close()

    def _close(self) -> None:
        if not self.closing:
            self.flush_deferred()
            self.closing = True
            self.transport.close()

    # -- housekeeping from the server's ticker ----------------------------------------

    def tick(self, now: int, keep_alive_ticks: int, header_ticks: int) -> None:
        if self.closing:
            return
        if self.in_head:
            if now - self.head_tick >= header_ticks and self.active is None:
                self._write(error_response(self.common, 408, "Request header timeout"))
                self._close()
        elif (
            self.active is None
            and self.parsing is None
            and not self.pipeline
            and now - self.idle_tick >= keep_alive_ticks
        ):
            self._close()

    def shutdown(self) -> None:
        """Graceful shutdown: close when idle, else after the response in flight."""
        if self.active is None and self.parsing is None:
            self._close()

