"""WebSocket over HTTP/2 (RFC 8441): an extended CONNECT stream as a session's carrier.

The connection (http2.py) advertises SETTINGS_ENABLE_CONNECT_PROTOCOL. A request with
`:method CONNECT` and `:protocol websocket` comes here: `open_websocket` checks it (the
same version, extension and subprotocol rules as HTTP/1.1, without the key: RFC 8441
section 5), builds the websocket scope (http_version "2") and starts a
`WebSocketSession` (websocket.py) on an `H2WebSocket`, the stream's `Carrier`:

- accepting is a `200` HEADERS frame (no END_STREAM); refusing is an ordinary response;
- WebSocket frames travel in DATA frames, under the stream's flow control both ways
  (pausing reading means holding the WINDOW_UPDATEs back);
- the orderly end of the socket is END_STREAM, an abort RST_STREAM (CANCEL).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from websockets.exceptions import InvalidHandshake

from dartle.server import proxy
from dartle.server.http2_stream import StreamBase, content_length_field
from dartle.server.http2_wire import (
    CANCEL,
    NO_ERROR,
    STATUS_FIELDS,
    common_fields,
    field,
    header_frames,
    literal,
    status_field,
)
from dartle.server.logs import log_websocket
from dartle.server.websocket import WebSocketSession
from dartle.server.ws_h1 import (
    SPEC_VERSION,
    WEBSOCKET_VERSION,
    WS_SCHEMES,
    parse_subprotocols,
    session_protocol,
)

if TYPE_CHECKING:
    from dartle.server.http2 import H2Connection
    from dartle.server.http2_wire import RequestHead


_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]


class H2WebSocket(StreamBase):
    """One extended CONNECT stream carrying a WebSocket session (the `Carrier` interface)."""

    __slots__ = ("accepted", "read_paused", "responded", "session")

    def __init__(self, conn: H2Connection, sid: int) -> None:
        super().__init__(conn, sid)
        self.session: WebSocketSession | None = None  # None: refused before a session began
        self.read_paused = False
        self.accepted = False
        self.responded = False

    # -- the Carrier interface ------------------------------------------------------------

    def accept(self, subprotocol: str | None, extensions: str | None, headers: Any) -> None:
        if self.dead:
            return
        parts = [STATUS_FIELDS[200], common_fields(self.conn.common.block)]
        if extensions is not None:
            parts.append(literal(b"sec-websocket-extensions", extensions.encode()))
        if subprotocol is not None:
            encoded = field((b"sec-websocket-protocol", subprotocol.encode()))
            assert encoded is not None
            parts.append(encoded)
        for item in headers or ():
            encoded = field(tuple(item))
            if encoded is not None:
                parts.append(encoded)
        self.accepted = True
        self._head(b"".join(parts), False)

    def respond(self, status: int, headers: Any, body: bytes, more: bool) -> None:
        if self.dead:
            return
        parts = [STATUS_FIELDS.get(status) or status_field(status), common_fields(self.conn.common.block)]
        length = -1
        for item in headers:
            name, value = item
            if type(name) is bytes and name.lower() == b"content-length":
                length = int(value)
                continue
            encoded = field(tuple(item))
            if encoded is not None:
                parts.append(encoded)
        if length >= 0:
            parts.append(content_length_field(length))
        elif not more:
            parts.append(content_length_field(len(body)))
        self.responded = True
        end = not more and not body
        self._head(b"".join(parts), end)
        if not end:
            self.respond_body(body, more)

    def respond_body(self, body: bytes, more: bool) -> None:
        if not self.dead and not self.local_closed and (body or not more):
            self.send_data(body, not more)

    def write(self, data: bytes) -> None:
        if not self.dead and not self.local_closed:
            self.send_data(data, False)

    def end(self) -> None:
        if not self.dead and not self.local_closed:
            self.send_data(b"", True)

    def abort(self) -> None:
        self.reset(CANCEL)

    def pause_reading(self) -> None:
        self.read_paused = True

    def resume_reading(self) -> None:
        self.read_paused = False
        if self.fed:
            fed, self.fed = self.fed, 0
            self.conn.consumed(self, fed)

    def log_access(self, scope: Any, status: int) -> None:
        if status == 101:
            status = 200  # what accepting is on HTTP/2 (RFC 8441)
        if self.conn.access_log:
            log_websocket(scope, status)

    def _head(self, block: bytes, end: bool) -> None:
        conn = self.conn
        prefix = conn.hpack_prefix
        if prefix:
            block = prefix + block
            conn.hpack_prefix = b""
        conn.write(header_frames(self.sid, block, end, conn.max_send_frame))
        if end:
            self.ended()

    # -- from the connection --------------------------------------------------------------

    def data_in(self, data: bytes, end: bool) -> None:
        if data:
            if self.read_paused:
                self.fed += len(data)
            else:
                self.conn.consumed(self, len(data))
            if self.session is not None:
                self.session.data_in(data)
        if end:
            self.remote_closed = True
            if self.session is not None:
                self.session.data_eof()
            self.conn.half_closed(self)

    def ended(self) -> None:
        super().ended()
        if self.responded and not self.remote_closed and not self.dead:
            self.reset(NO_ERROR)  # an HTTP answer instead of a WebSocket: the stream is done

    def closed(self) -> None:
        super().closed()  # bytes held back while the session stopped reading
        if self.session is not None:
            self.session.connection_lost()

    def gone(self, by_peer: bool) -> None:
        super().gone(by_peer)
        if self.session is not None:
            self.session.connection_lost()

    def overdue(self, now: float) -> bool:
        return self.session is not None and self.session.overdue(now)

    def shutdown(self) -> None:
        if self.session is not None:
            self.session.shutdown()

    def cancel(self) -> None:
        if self.session is not None:
            self.session.cancel()


def open_websocket(conn: H2Connection, sid: int, head: RequestHead, end: bool) -> None:
    """Serve an extended CONNECT on stream `sid`: a WebSocket for :protocol websocket,
    a 501 for any other protocol."""
    stream = H2WebSocket(conn, sid)
    conn.streams[sid] = stream
    versions: list[bytes] = []
    offers: list[bytes] = []
    subprotocols: list[str] = []
    for name, value in head.headers:
        if name == b"sec-websocket-version":
            versions.append(value)
        elif name == b"sec-websocket-extensions":
            offers.append(value)
        elif name == b"sec-websocket-protocol":
            subprotocols.extend(parse_subprotocols(value))
    state = conn.state
    config = state.config
    protocol_name = (head.protocol or b"").decode("latin-1")
    if end:
        stream.remote_closed = True
    refusal: tuple[int, list[tuple[bytes, bytes]], str] | None
    if protocol_name != "websocket" or not conn.websockets:
        refusal = (501, [], f"extended CONNECT for {protocol_name!r} is not supported")
    elif end:
        refusal = (400, [], "Invalid WebSocket handshake: the stream ended with its headers")
    elif versions != [WEBSOCKET_VERSION]:
        got = b", ".join(versions).decode("latin-1") or "none"
        refusal = (426, [(b"sec-websocket-version", WEBSOCKET_VERSION)],
                   f"Unsupported Sec-WebSocket-Version ({got}); this server speaks version 13")
    elif head.refusal is not None:
        refusal = (head.refusal[0], [], head.refusal[1])
    elif state.limit is not None and state.over_limit():
        refusal = (503, [], "Service Unavailable")
    else:
        refusal = None
    protocol = extensions_header = None
    if refusal is None:
        try:
            protocol, extensions_header = session_protocol(config, offers)
        except InvalidHandshake as exc:
            refusal = (400, [], f"Invalid WebSocket handshake: {exc}")
    path, raw_path, query = head.target
    scope: dict[str, Any] = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": SPEC_VERSION},
        "http_version": "2",
        "scheme": "wss" if conn.scheme == "https" else "ws",
        "server": conn.server_addr,
        "client": conn.client_addr,
        "root_path": conn.root_path,
        "path": path,
        "raw_path": raw_path,
        "query_string": query,
        "headers": head.headers.copy(),
        "subprotocols": subprotocols,
        "state": state.lifespan_state.copy(),
        "extensions": {"websocket.http.response": {}},
    }
    tls = conn.extensions.get("tls")
    if tls is not None:
        scope["extensions"]["tls"] = tls
    if refusal is not None or protocol is None:
        assert refusal is not None
        status, extra, message = refusal
        stream.log_access(scope, status)
        stream.respond(status, [*_TEXT, *extra], message.encode() + b"\n", False)
        return
    if conn.proxy_trusted and head.watched is not None:
        proxy.apply_forwarded(scope, head.watched, state.trusted)
        scope["scheme"] = WS_SCHEMES.get(scope["scheme"], "ws")
    session = WebSocketSession(
        scope, stream, protocol, extensions_header, state.app,
        config.ws_ping_interval, config.ws_ping_timeout,
    )
    stream.session = session
    state.tasks += 1
    session.start(state.task_done)
