"""WebSocket over HTTP/1.1: the Upgrade handshake, then the socket as a session's carrier.

`websocket_handshake()` is called by the HTTP/1.1 framing (http1.py) for a request that
asks to upgrade. It checks the handshake (RFC 6455 section 4.2.1), negotiates extensions
and builds the websocket scope; a bad handshake gets its HTTP answer (400, 426, 503)
without the app being called. Once the parser has read the whole request, the framing
hands the transport over (`Handshake.upgrade`) to an `H1WebSocket`, which moves bytes
between the socket and the `WebSocketSession` (websocket.py) and does the connection's
housekeeping (close timeout, graceful shutdown).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from typing import TYPE_CHECKING, Any

from websockets.datastructures import Headers
from websockets.exceptions import InvalidHandshake
from websockets.extensions.base import ServerExtensionFactory
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.protocol import OPEN as PROTOCOL_OPEN
from websockets.utils import accept_key

from dartle.server import proxy
from dartle.server.flow import WriteFlow
from dartle.server.logs import log_websocket
from dartle.server.websocket import WebSocketSession
from dartle.server.wire import FRAMING_HEADERS, CommonHeaders, status_line
from dartle.server.ws_protocol import SessionProtocol

if TYPE_CHECKING:
    from dartle.config import Config
    from dartle.server.http1 import H1Connection
    from dartle.server.serve import ServerState

logger = logging.getLogger("dartle.error")

WEBSOCKET_VERSION = b"13"
SPEC_VERSION = "2.5"  # 2.1 accept headers, 2.3 close reason, 2.4 OSError, 2.5 disconnect reason
WS_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}  # the scope's scheme
# The app frames a denial response through the server, as in HTTP.
# Per-connection memory of permessage-deflate stays small: 4 KiB windows, memLevel 5
# (the websockets library's own server defaults). The client's parameters are honoured.
# Compression level 3, not zlib's default 6: levels 1-3 do not hash every byte of a long
# match, which is most of the CPU a small message costs. On chat-like JSON messages of a
# few hundred bytes level 3 costs a quarter less CPU than 6 for output ~10% larger
# (level 1: ~25% larger); Go's gorilla/websocket defaults to level 1 for the same reason.
DEFLATE_LEVEL = 3
_DEFLATE: list[ServerExtensionFactory] = [
    ServerPerMessageDeflateFactory(
        server_max_window_bits=12,
        client_max_window_bits=12,
        compress_settings={"memLevel": 5, "level": DEFLATE_LEVEL},
    )
]


class Handshake:
    """A checked WebSocket handshake request: a session ready to run, or the refusal to send."""

    __slots__ = ("accept_key", "extensions_header", "protocol", "refusal", "scope")

    def __init__(self) -> None:
        self.refusal: bytes | None = None
        self.scope: dict[str, Any] = {}
        self.protocol: SessionProtocol | None = None
        self.accept_key = ""
        self.extensions_header: str | None = None

    def upgrade(self, conn: H1Connection, leftover: bytes) -> None:
        """Take the connection's transport over; `leftover` is what followed the request."""
        state = conn.state
        carrier = H1WebSocket(conn, self.accept_key)
        assert self.protocol is not None
        config = state.config
        session = WebSocketSession(
            self.scope, carrier, self.protocol, self.extensions_header, state.app,
            config.ws_ping_interval, config.ws_ping_timeout,
        )
        carrier.session = session
        state.connections.discard(conn)
        state.connections.add(carrier)
        conn.transport.set_protocol(carrier)
        if conn.read_paused:
            carrier.read_paused = False
            conn.transport.resume_reading()
        state.tasks += 1
        session.start(state.task_done)
        if leftover:
            session.data_in(leftover)


def websocket_handshake(
    conn: H1Connection, method: str, version: str, target: tuple[str, bytes, bytes]
) -> Handshake | None:
    """Check an Upgrade request; None when it does not ask for a WebSocket (plain HTTP then).

    `target` is the request's (path, raw_path, query_string) for the scope, root path applied.
    """
    watched = conn.watched
    assert watched is not None
    upgrade = watched.get(b"upgrade", b"")
    if method != "GET" or version != "1.1" or not conn.parser.should_upgrade():
        return None
    if b"websocket" not in (token.strip() for token in upgrade.lower().split(b",")):
        return None
    handshake = Handshake()
    common = conn.common
    versions: list[bytes] = []
    keys: list[bytes] = []
    offers: list[bytes] = []
    subprotocols: list[str] = []
    for name, value in conn.headers:
        if name[:14] != b"sec-websocket-":
            continue
        if name == b"sec-websocket-version":
            versions.append(value)
        elif name == b"sec-websocket-key":
            keys.append(value)
        elif name == b"sec-websocket-extensions":
            offers.append(value)
        elif name == b"sec-websocket-protocol":
            subprotocols.extend(parse_subprotocols(value))
    if versions != [WEBSOCKET_VERSION]:
        got = b", ".join(versions).decode("latin-1") or "none"
        handshake.refusal = http_response(
            common, 426, [(b"sec-websocket-version", WEBSOCKET_VERSION), (b"upgrade", b"websocket")],
            f"Unsupported Sec-WebSocket-Version ({got}); this server speaks version 13\n".encode(),
        )
        return handshake
    if len(keys) != 1 or not _valid_key(keys[0]):
        problem = "missing" if not keys else "repeated" if len(keys) > 1 else "not 16 bytes in base64"
        handshake.refusal = http_response(
            common, 400, [], f"Invalid WebSocket handshake: Sec-WebSocket-Key is {problem}\n".encode()
        )
        return handshake
    state = conn.state
    if state.limit is not None and state.over_limit():
        handshake.refusal = http_response(common, 503, [], b"Service Unavailable\n")
        return handshake
    config = state.config
    try:
        protocol, handshake.extensions_header = session_protocol(config, offers)
    except InvalidHandshake as exc:
        handshake.refusal = http_response(
            common, 400, [], f"Invalid WebSocket handshake: {exc}\n".encode()
        )
        return handshake
    handshake.protocol = protocol
    handshake.accept_key = accept_key(keys[0].decode("ascii"))
    scope: dict[str, Any] = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": SPEC_VERSION},
        "http_version": "1.1",
        "scheme": "wss" if conn.scheme == "https" else "ws",
        "server": conn.server_addr,
        "client": conn.client_addr,
        "root_path": conn.root_path,
        "path": target[0],
        "raw_path": target[1],
        "query_string": target[2],
        "headers": conn.headers,
        "subprotocols": subprotocols,
        "state": conn.lifespan_state.copy(),
        "extensions": {"websocket.http.response": {}},
    }
    tls = conn.extensions.get("tls")
    if tls is not None:
        scope["extensions"]["tls"] = tls
    if conn.proxy_trusted:
        proxy.apply_forwarded(scope, watched, state.trusted)
        scope["scheme"] = WS_SCHEMES.get(scope["scheme"], "ws")
    handshake.scope = scope
    return handshake


def session_protocol(config: Config, offers: list[bytes]) -> tuple[SessionProtocol, str | None]:
    """A session's protocol engine, permessage-deflate negotiated from the client's offers.

    Returns the engine and the Sec-WebSocket-Extensions answer (None: no extension).
    Raises InvalidHandshake for offers that cannot be accepted. Shared by HTTP/1.1 and
    HTTP/2 (ws_h2.py) handshakes.
    """
    protocol = SessionProtocol(
        extensions=_DEFLATE if config.ws_per_message_deflate else None,
        max_size=config.ws_max_size,
        state=PROTOCOL_OPEN,
    )
    header = None
    if offers and config.ws_per_message_deflate:
        header, accepted = protocol.process_extensions(
            Headers([("Sec-WebSocket-Extensions", o.decode("latin-1")) for o in offers])
        )
        protocol.use_extensions(accepted)
    return protocol, header


def parse_subprotocols(value: bytes) -> list[str]:
    """The subprotocols one Sec-WebSocket-Protocol field offers."""
    return [p for p in (t.strip() for t in value.decode("latin-1").split(",")) if p]


def _valid_key(key: bytes) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def http_response(
    common: CommonHeaders, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> bytes:
    """A complete plain-text response after which the connection closes."""
    return b"".join(
        (
            status_line(status),
            common.block,
            *(b"%s: %s\r\n" % pair for pair in headers),
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body),
            body,
        )
    )


def _header_lines(headers: Any, what: str) -> list[bytes]:
    try:
        lines = [b"%s: %s\r\n" % (name, value) for name, value in headers]
    except (TypeError, ValueError):
        raise TypeError(f"{what} headers must be [name, value] pairs of bytes") from None
    block = b"".join(lines)
    if block.count(b"\n") != len(lines) or block.count(b"\r") != len(lines):
        raise ValueError(f"{what} header names and values must not contain CR or LF")
    return lines


class H1WebSocket(WriteFlow, asyncio.Protocol):
    """The socket of an upgraded HTTP/1.1 connection, carrying one WebSocket session."""

    __slots__ = (
        "accept_key",
        "access_log",
        "chunked",
        "client_addr",
        "closing",
        "common",
        "drain_waiter",
        "loop",
        "read_paused",
        "session",
        "state",
        "transport",
        "write_paused",
    )

    session: WebSocketSession

    def __init__(self, conn: H1Connection, key: str) -> None:
        self.state: ServerState = conn.state
        self.loop = conn.loop
        self.transport = conn.transport
        self.common = conn.common
        self.access_log = conn.access_log
        self.client_addr = conn.client_addr
        self.accept_key = key
        self.read_paused = conn.read_paused
        self.write_paused = conn.write_paused
        self.drain_waiter: asyncio.Future[None] | None = None
        self.closing = False
        self.chunked = False

    # -- asyncio.Protocol -----------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.session.data_in(data)

    def eof_received(self) -> bool | None:
        self.session.data_eof()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.state.connections.discard(self)
        self.session.connection_lost()
        waiter = self.drain_waiter
        if waiter is not None:
            self.drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)
        self.state.connection_closed()

    # -- the Carrier interface ------------------------------------------------------------

    def accept(self, subprotocol: str | None, extensions: str | None, headers: Any) -> None:
        parts = [
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
            b"sec-websocket-accept: %s\r\n" % self.accept_key.encode(),
            self.common.block,
        ]
        if extensions is not None:
            parts.append(b"sec-websocket-extensions: %s\r\n" % extensions.encode())
        if subprotocol is not None:
            line = b"sec-websocket-protocol: %s\r\n" % subprotocol.encode()
            if line.count(b"\n") != 1 or line.count(b"\r") != 1:
                raise ValueError("websocket.accept subprotocol must not contain CR or LF")
            parts.append(line)
        if headers:
            parts.extend(_header_lines(headers, "websocket.accept"))
        parts.append(b"\r\n")
        if not self.closing:
            self.transport.write(b"".join(parts))

    def respond(self, status: int, headers: Any, body: bytes, more: bool) -> None:
        parts = [status_line(status), self.common.block]
        length = -1
        kept = []
        for name, value in headers:
            lname = name.lower() if type(name) is bytes else name
            if lname in FRAMING_HEADERS:
                if lname == b"content-length":
                    length = int(value)
                continue
            kept.append((name, value))
        parts.extend(_header_lines(kept, "websocket.http.response.start"))
        if length >= 0:
            parts.append(b"content-length: %d\r\n" % length)
        elif not more:
            parts.append(b"content-length: %d\r\n" % len(body))
        else:
            self.chunked = True
            parts.append(b"transfer-encoding: chunked\r\n")
        parts.append(b"connection: close\r\n\r\n")
        if self.closing:
            return
        self.transport.write(b"".join(parts))
        self.respond_body(body, more)

    def respond_body(self, body: bytes, more: bool) -> None:
        if self.closing:
            return
        if self.chunked:
            if body:
                self.transport.write(b"%x\r\n%s\r\n" % (len(body), body))
            if not more:
                self.transport.write(b"0\r\n\r\n")
        elif body:
            self.transport.write(body)
        if not more:
            self.end()

    def write(self, data: bytes) -> None:
        if not self.closing:
            self.transport.write(data)

    def end(self) -> None:
        if not self.closing:
            self.closing = True
            self.transport.close()

    def abort(self) -> None:
        self.closing = True
        self.transport.abort()

    def pause_reading(self) -> None:
        if not self.read_paused and not self.closing:
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused and not self.closing:
            self.read_paused = False
            self.transport.resume_reading()

    def log_access(self, scope: Any, status: int) -> None:
        if self.access_log:
            log_websocket(scope, status)

    # -- housekeeping from the server's ticker --------------------------------------------

    def tick(self, now: int, keep_alive_ticks: int, header_ticks: int) -> None:
        if self.session.overdue(self.loop.time()):
            self.abort()

    def shutdown(self) -> None:
        """Graceful shutdown: the app gets its disconnect, the client a 1001 close."""
        self.session.shutdown()

    def force_close(self) -> None:
        """Drop the connection at once and stop the app."""
        self.session.cancel()
        self.abort()
