"""How a connection becomes HTTP/2: prior knowledge, `Upgrade: h2c`, or ALPN "h2".

The HTTP/1.1 framing (http1.py) calls these hooks, outside its per-request path: when
its parser stops on a whole client preface (h2c by prior knowledge), on an upgrade
request it may take (`h2c_settings`), and when the TLS handshake selected "h2". The
transport is handed to a new `H2Connection` (http2.py) with whatever was read after.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from dartle.server.cycle import Cycle
from dartle.server.http2 import H2Connection
from dartle.server.http2_control import apply_settings
from dartle.server.http2_stream import H2Stream
from dartle.server.http2_wire import PREFACE, ConnectionFailure

if TYPE_CHECKING:
    from dartle.server.http1 import H1Connection


def take_over(h1: H1Connection, data: bytes, preface_seen: bool) -> H2Connection:
    """Serve HTTP/2 on `h1`'s transport from now on; `data` is what was read after it.

    With `preface_seen` the client preface was already read (prior knowledge, checked
    by the HTTP/1 parser) and `data` is what followed it.
    """
    conn = _adopt(h1)
    if preface_seen:
        conn.preface = b""
    if data:
        conn.data_received(data)
    return conn


def upgrade(h1: H1Connection, request: Cycle, settings: bytes, data: bytes) -> H2Connection:
    """h2c by `Upgrade` (RFC 7540 3.2): 101, then HTTP/2 with `request` as stream 1.

    `settings` is the request's decoded HTTP2-Settings; `data` what followed the
    request: its body (Content-Length bytes, not framed), then the client preface.
    """
    h1.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n")
    conn = _adopt(h1)
    try:
        apply_settings(conn, settings)  # the 101 acknowledges them (no SETTINGS ACK)
    except ConnectionFailure as exc:
        conn.fail(exc.code, str(exc))
        return conn
    watched = h1.watched or {}
    length = int(watched.get(b"content-length", b"0") or b"0")
    scope = dict(request.scope)
    scope["http_version"] = "2"
    scope["extensions"] = conn.extensions
    scope["headers"] = [item for item in scope["headers"] if item[0] not in _H2C_FIELDS]
    stream = H2Stream(conn, 1, length)
    cycle = stream.cycle = Cycle(scope, stream, True)
    cycle.flags = request.flags
    conn.last_sid = 1
    conn.streams[1] = stream
    if length:
        conn.upgrade_body = length
    else:
        cycle.body_complete = True
        stream.remote_closed = True
    conn.ready.append(cycle)
    conn.data_received(data)
    return conn


def _adopt(h1: H1Connection) -> H2Connection:
    """A new HTTP/2 connection as the protocol of `h1`'s transport (our SETTINGS sent)."""
    conn = H2Connection(h1.state)
    transport = h1.transport
    h1.state.connections.discard(h1)
    transport.set_protocol(conn)
    conn.connection_made(transport)
    if h1.read_paused:
        transport.resume_reading()
    return conn


def preface_end(data: bytes) -> int:
    """Where the client preface ends in `data`, the read that completed it.

    The HTTP/1 parser stops right after a whole, valid preface, which may have begun in an
    earlier read: `data` then starts with the preface's tail.
    """
    for k in range(len(PREFACE), 0, -1):
        if data[:k] == PREFACE[-k:]:
            return k
    return 0


# Fields of the h2c upgrade itself, which the request as stream 1 no longer has.
_H2C_FIELDS = frozenset((b"connection", b"upgrade", b"http2-settings", b"keep-alive"))


def h2c_settings(scheme: str, watched: dict[bytes, bytes] | None, headers: Any) -> bytes | None:
    """The decoded HTTP2-Settings of an `Upgrade: h2c` request we take (else None).

    Taken: cleartext, an `h2c` token, exactly one valid HTTP2-Settings field, and no
    chunked body (a Content-Length body is read before the preface).
    """
    if scheme != "http" or not watched or b"transfer-encoding" in watched:
        return None
    tokens = (token.strip() for token in watched.get(b"upgrade", b"").lower().split(b","))
    if b"h2c" not in tokens:
        return None
    values = [value for name, value in headers if name == b"http2-settings"]
    if len(values) != 1:
        return None
    value = values[0].strip()
    try:
        payload = base64.urlsafe_b64decode(value + b"=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(payload) % 6:
        return None
    return payload
