"""HTTP/2 wire details: frame layout, error and setting codes, HPACK both ways, request heads.

No I/O and no connection state here (that is http2.py). Three things:

- frames: the 9-byte header (RFC 9113 section 4.1) and the few control frames we send;
- HPACK out (RFC 7541): response fields as literals *without indexing*, so the encoder
  keeps no state and every (name, value) pair encodes to the same bytes on every
  connection; those bytes are cached like HTTP/1's header lines. The price is a few bytes
  per response header that a dynamic table would have saved; the gain is a response head
  built by joining cached byte strings;
- HPACK in: the `hpack` library's decoder (from the h2 project) behind a cache. Clients
  repeat header blocks byte for byte once their dynamic table holds the fields (h2load,
  curl, browsers re-requesting a page), and a block that neither adds to nor resizes the
  dynamic table decodes to the same fields while the table is unchanged. A hit returns
  the request head checked and digested (RFC 9113 section 8) the first time.
"""

from __future__ import annotations

import re
import struct
from typing import Any

from hpack import Decoder, HPACKError, OversizedHeaderListError
from hpack.table import HeaderTable

from dartle.server.wire import parse_target, valid_host

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (RFC 9113 section 6; RFC 8441 adds no frame)
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY = range(8)
WINDOW_UPDATE, CONTINUATION = 8, 9
FRAME_NAMES = ("DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING",
               "GOAWAY", "WINDOW_UPDATE", "CONTINUATION")

# Flags
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

# Error codes (RFC 9113 section 7)
NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
FLOW_CONTROL_ERROR = 0x3
SETTINGS_TIMEOUT = 0x4
STREAM_CLOSED = 0x5
FRAME_SIZE_ERROR = 0x6
REFUSED_STREAM = 0x7
CANCEL = 0x8
COMPRESSION_ERROR = 0x9
CONNECT_ERROR = 0xA
ENHANCE_YOUR_CALM = 0xB
INADEQUATE_SECURITY = 0xC
HTTP_1_1_REQUIRED = 0xD
ERROR_NAMES = {
    0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
    4: "SETTINGS_TIMEOUT", 5: "STREAM_CLOSED", 6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM",
    8: "CANCEL", 9: "COMPRESSION_ERROR", 10: "CONNECT_ERROR", 11: "ENHANCE_YOUR_CALM",
    12: "INADEQUATE_SECURITY", 13: "HTTP_1_1_REQUIRED",
}

# Settings (RFC 9113 section 6.5.2, RFC 8441 section 3)
HEADER_TABLE_SIZE = 0x1
ENABLE_PUSH = 0x2
MAX_CONCURRENT_STREAMS = 0x3
INITIAL_WINDOW_SIZE = 0x4
MAX_FRAME_SIZE = 0x5
MAX_HEADER_LIST_SIZE = 0x6
ENABLE_CONNECT_PROTOCOL = 0x8

DEFAULT_WINDOW = 65535
DEFAULT_MAX_FRAME = 16384
MAX_WINDOW = 2**31 - 1
MAX_FRAME_LIMIT = 2**24 - 1

_HEAD = struct.Struct(">HBBBL")  # length as 16 + 8 bits, type, flags, stream id
unpack_head = _HEAD.unpack_from
_pack_head = _HEAD.pack
_U32 = struct.Struct(">L")
_SETTING = struct.Struct(">HL")


class ConnectionFailure(Exception):
    """A connection error (RFC 9113 section 5.4.1): GOAWAY with `code`, then close."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class StreamFailure(Exception):
    """A stream error (RFC 9113 section 5.4.2): RST_STREAM with `code` on `stream_id`."""

    def __init__(self, stream_id: int, code: int, message: str) -> None:
        super().__init__(message)
        self.stream_id = stream_id
        self.code = code


# -- frames ---------------------------------------------------------------------------


def frame_head(length: int, ftype: int, flags: int, stream_id: int) -> bytes:
    return _pack_head(length >> 8, length & 0xFF, ftype, flags, stream_id)


def frame(ftype: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return _pack_head(len(payload) >> 8, len(payload) & 0xFF, ftype, flags, stream_id) + payload


def settings_frame(settings: dict[int, int]) -> bytes:
    return frame(SETTINGS, 0, 0, b"".join(_SETTING.pack(k, v) for k, v in settings.items()))


def parse_settings(payload: bytes) -> list[tuple[int, int]]:
    return [_SETTING.unpack_from(payload, i) for i in range(0, len(payload), 6)]


SETTINGS_ACK = frame(SETTINGS, ACK, 0)


def window_update(stream_id: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream_id, _U32.pack(increment))


def rst_stream(stream_id: int, code: int) -> bytes:
    return frame(RST_STREAM, 0, stream_id, _U32.pack(code))


def goaway(last_stream_id: int, code: int, debug: bytes = b"") -> bytes:
    return frame(GOAWAY, 0, 0, _U32.pack(last_stream_id) + _U32.pack(code) + debug)


def u32(payload: bytes, offset: int = 0) -> int:
    return int(_U32.unpack_from(payload, offset)[0])


def strip_padding(flags: int, payload: bytes) -> tuple[bytes, int]:
    """A DATA or HEADERS payload without padding (and HEADERS priority fields).

    Returns the payload and the stream dependency (-1: none given).
    """
    start = 0
    end = len(payload)
    depends = -1
    if flags & PADDED:
        if not payload:
            raise ConnectionFailure(FRAME_SIZE_ERROR, "padded frame without a pad length")
        end -= payload[0]
        start = 1
    if flags & PRIORITY_FLAG:
        if end - start < 5:
            raise ConnectionFailure(FRAME_SIZE_ERROR, "HEADERS too short for its priority fields")
        depends = u32(payload, start) & 0x7FFFFFFF
        start += 5
    if end < start:
        raise ConnectionFailure(PROTOCOL_ERROR, "padding longer than the frame")
    return payload[start:end], depends


def header_frames(stream_id: int, block: bytes, end_stream: bool, max_frame: int,
                  ftype: int = HEADERS, prefix: bytes = b"") -> bytes:
    """A field block as HEADERS (or PUSH_PROMISE, with `prefix`) and CONTINUATION frames."""
    flags = END_STREAM if end_stream else 0
    payload = prefix + block
    if len(payload) <= max_frame:
        return frame_head(len(payload), ftype, flags | END_HEADERS, stream_id) + payload
    parts = [frame_head(max_frame, ftype, flags, stream_id), payload[:max_frame]]
    pos = max_frame
    while pos < len(payload):
        piece = payload[pos : pos + max_frame]
        pos += len(piece)
        last = END_HEADERS if pos >= len(payload) else 0
        parts.append(frame_head(len(piece), CONTINUATION, last, stream_id))
        parts.append(piece)
    return b"".join(parts)


# -- HPACK out --------------------------------------------------------------------------

_STATIC_NAMES: dict[bytes, int] = {}
for _index, (_name, _value) in enumerate(HeaderTable.STATIC_TABLE, 1):
    _STATIC_NAMES.setdefault(_name, _index)
_STATUS_INDEX = {200: 8, 204: 9, 206: 10, 304: 11, 400: 12, 404: 13, 500: 14}


def _integer(value: int, bits: int, first: int) -> bytes:
    limit = (1 << bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(data: bytes) -> bytes:
    return _integer(len(data), 7, 0) + data


def literal(name: bytes, value: bytes) -> bytes:
    """One field as a literal without indexing (RFC 7541 section 6.2.2)."""
    index = _STATIC_NAMES.get(name)
    if index is not None:
        return _integer(index, 4, 0) + _string(value)
    return b"\x00" + _string(name) + _string(value)


def status_field(status: int) -> bytes:
    index = _STATUS_INDEX.get(status)
    if index is not None:
        return bytes((0x80 | index,))
    return literal(b":status", b"%d" % status)


STATUS_FIELDS = {status: status_field(status) for status in range(100, 600)}

# Response fields by (name, value), as for HTTP/1 header lines. Names must be valid
# lowercase tokens (RFC 9113 8.2.1: uppercase is malformed in HTTP/2), values free of
# CR, LF and NUL and of surrounding whitespace.
FIELDS: dict[Any, bytes] = {}
FIELDS_MAX = 4096
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+").fullmatch
_BAD_VALUE = re.compile(rb"[\r\n\0]|^[ \t]|[ \t]$").search
# Fields of HTTP/1 connection management, which HTTP/2 forbids (RFC 9113 8.2.2).
CONNECTION_FIELDS = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade")
)


def field(item: Any) -> bytes | None:
    """The encoded form of one app-given (name, value); None for a field HTTP/2 drops."""
    try:
        name, value = item
    except (TypeError, ValueError):
        raise TypeError(f"a header must be a (name, value) pair of bytes, not {item!r}") from None
    if type(name) is not bytes or type(value) is not bytes:
        raise TypeError(f"header name and value must be bytes, not {item!r}")
    lname = name.lower()
    if lname in CONNECTION_FIELDS:
        return None
    if not _TOKEN(lname) or _BAD_VALUE(value):
        raise ValueError(f"response header {name!r}: {value!r} is not a valid field")
    encoded = literal(lname, value)
    if type(item) is tuple:
        if len(FIELDS) >= FIELDS_MAX:
            FIELDS.clear()
        FIELDS[item] = encoded
    return encoded


# A response's fields, HPACK-encoded: (with_length, without_length, length) - the app's
# fields in its order with Content-Length where the app put it; the same without it; the
# length the app gave (-1: none). Remembered by the app's header list as a tuple, as for
# HTTP/1 (wire.HEAD_BLOCKS): one dict lookup per response instead of one per field.
HeadFields = tuple[bytes, bytes, int]
HEAD_FIELDS: dict[tuple[Any, ...], HeadFields] = {}
HEAD_FIELDS_MAX = 1024


def head_fields(headers: Any) -> HeadFields:
    """The app's `http.response.start` headers as HPACK fields, checked (see HEAD_FIELDS).

    Raises TypeError or ValueError, naming the header, for what no response may carry.
    """
    try:
        key = tuple(headers)
        cached = HEAD_FIELDS.get(key)
    except TypeError:
        try:  # header pairs given as lists: the same rules
            key = tuple(tuple(item) for item in headers)
            cached = HEAD_FIELDS.get(key)
        except TypeError:
            raise TypeError(
                f"http.response.start headers must be [name, value] byte string pairs, not {headers!r}"
            ) from None
    if cached is not None:
        return cached
    parts: list[bytes] = []
    without: list[bytes] = []
    length = -1
    length_at = -1
    try:
        for item in key:
            encoded = FIELDS.get(item)
            if encoded is None:
                name = item[0]
                if type(name) is bytes and name.lower() == b"content-length":
                    length = int(item[1])
                    length_at = len(parts)
                    parts.append(b"")  # filled in below: the last one counts
                    continue
                encoded = field(item)
                if encoded is None:
                    continue  # HTTP/1 connection management: HTTP/2 has none
            parts.append(encoded)
            without.append(encoded)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"http.response.start headers: {exc}") from None
    if length >= 0:
        parts[length_at] = literal(b"content-length", b"%d" % length)
    else:
        length = -1
    result = (b"".join(parts), b"".join(without), length)
    if len(HEAD_FIELDS) >= HEAD_FIELDS_MAX:
        HEAD_FIELDS.clear()
    HEAD_FIELDS[key] = result
    return result


_COMMON: dict[bytes, bytes] = {}


def common_fields(block: bytes) -> bytes:
    """The Date and Server fields for HTTP/1's `CommonHeaders.block`, HPACK-encoded."""
    encoded = _COMMON.get(block)
    if encoded is None:
        parts = []
        for line in block.split(b"\r\n"):
            if line:
                name, _, value = line.partition(b": ")
                parts.append(literal(name, value))
        encoded = b"".join(parts)
        if len(_COMMON) > 8:
            _COMMON.clear()
        _COMMON[block] = encoded
    return encoded


# -- HPACK in and request heads -------------------------------------------------------


class _Table(HeaderTable):
    """The dynamic table, counting its changes so that decoded blocks can be cached."""

    version = 0

    def add(self, name: bytes, value: bytes) -> None:
        self.version += 1
        super().add(name, value)

    @property
    def maxsize(self) -> int:
        return self._maxsize

    @maxsize.setter
    def maxsize(self, newmax: int) -> None:
        self.version += 1
        HeaderTable.maxsize.fset(self, newmax)  # type: ignore[attr-defined]


class RequestHead:
    """A request's header block, checked (RFC 9113 section 8.3) and digested for a scope.

    `malformed` (a reason) makes the stream fail with PROTOCOL_ERROR; `refusal` (status,
    message) is answered with that HTTP error instead of calling the app.
    """

    __slots__ = (
        "authority", "content_length", "expect", "headers", "malformed", "method", "protocol",
        "refusal", "scheme", "target", "te_trailers", "watched",
    )

    def __init__(self) -> None:
        self.method = ""
        self.target: tuple[str, bytes, bytes] = ("", b"", b"")
        self.headers: list[tuple[bytes, bytes]] = []
        self.authority: bytes | None = None
        self.scheme = b""
        self.protocol: bytes | None = None
        self.content_length = -1
        self.te_trailers = False
        self.expect = False
        self.watched: dict[bytes, bytes] | None = None
        self.malformed: str | None = None
        self.refusal: tuple[int, str] | None = None


_PSEUDO = frozenset((b":method", b":scheme", b":path", b":authority", b":protocol"))
_WATCHED = frozenset((b"x-forwarded-for", b"x-forwarded-proto"))
_METHOD = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+").fullmatch
_FIELD_VALUE_BAD = re.compile(rb"[\r\n\0]|^[ \t]|[ \t]$").search


def parse_request(fields: list[tuple[bytes, bytes]], max_size: int, root_path: str) -> RequestHead:
    """Check and digest a decoded request header block (never raises for bad input)."""
    head = RequestHead()
    pseudo: dict[bytes, bytes] = {}
    headers: list[tuple[bytes, bytes]] = []
    cookies: list[bytes] = []
    cookie_at = -1
    host: bytes | None = None
    size = 0
    regular = False
    for name, value in fields:
        size += len(name) + len(value) + 32
        if name[:1] == b":":
            if regular:
                head.malformed = f"pseudo-header {name!r} after a regular field"
                return head
            if name not in _PSEUDO:
                head.malformed = f"unknown pseudo-header {name!r}"
                return head
            if name in pseudo:
                head.malformed = f"repeated pseudo-header {name!r}"
                return head
            pseudo[name] = value
            continue
        regular = True
        if not _TOKEN(name):
            head.malformed = f"invalid field name {name!r} (HTTP/2 field names are lowercase tokens)"
            return head
        if _FIELD_VALUE_BAD(value):
            head.malformed = f"invalid value for field {name!r}"
            return head
        if name in CONNECTION_FIELDS:
            head.malformed = f"connection-specific field {name!r} in an HTTP/2 request"
            return head
        if name == b"te":
            if value.lower() != b"trailers":
                head.malformed = "TE other than 'trailers' in an HTTP/2 request"
                return head
            head.te_trailers = True
        elif name == b"cookie":
            # RFC 9113 8.2.3: cookie crumbs are joined for a generic application
            if cookie_at < 0:
                cookie_at = len(headers)
                headers.append((name, value))
            cookies.append(value)
            continue
        elif name == b"host":
            host = value
        elif name == b"content-length":
            if not value.isdigit() or (head.content_length >= 0 and int(value) != head.content_length):
                head.malformed = "invalid Content-Length"
                return head
            head.content_length = int(value)
        elif name == b"expect":
            if value.lower() == b"100-continue":
                head.expect = True
            else:
                head.refusal = (417, "Expectation failed")
        elif name in _WATCHED:
            if head.watched is None:
                head.watched = {}
            old = head.watched.get(name)
            head.watched[name] = value if old is None else old + b"," + value
        headers.append((name, value))
    if len(cookies) > 1:
        headers[cookie_at] = (b"cookie", b"; ".join(cookies))
    method = pseudo.get(b":method")
    if method is None or not _METHOD(method):
        head.malformed = "missing or invalid :method"
        return head
    head.method = method.decode("ascii").upper()
    authority = pseudo.get(b":authority")
    protocol = pseudo.get(b":protocol")
    if protocol is not None:
        if head.method != "CONNECT":
            head.malformed = ":protocol in a request that is not CONNECT"
            return head
        head.protocol = protocol
    elif head.method == "CONNECT":
        # plain CONNECT (a tunnel): :authority only (RFC 9113 8.5)
        if b":scheme" in pseudo or b":path" in pseudo or authority is None:
            head.malformed = "CONNECT needs :authority and no :scheme or :path"
            return head
        head.refusal = (501, "CONNECT tunnels are not supported")
    if head.method != "CONNECT" or protocol is not None:
        scheme = pseudo.get(b":scheme")
        path = pseudo.get(b":path")
        if not scheme or not path:
            head.malformed = "missing :scheme or :path"
            return head
        head.scheme = scheme
        if path[:1] != b"/" and not (path == b"*" and head.method == "OPTIONS"):
            head.malformed = f"invalid :path {path[:64]!r}"
            return head
        try:
            head.target = parse_target(path, root_path)
        except ValueError as exc:
            head.refusal = (400, str(exc))
    if authority is not None:
        if not valid_host(authority):
            head.refusal = (400, "Bad request: an invalid :authority")
        elif host is not None and host != authority:
            head.malformed = "Host and :authority differ"
            return head
        head.authority = authority
        # ASGI: :authority goes first, as host, replacing any host field
        if host is not None:
            headers = [item for item in headers if item[0] != b"host"]
        headers.insert(0, (b"host", authority))
    elif host is not None:
        head.authority = host
        if not valid_host(host):
            head.refusal = (400, "Bad request: an invalid Host header")
    head.headers = headers
    if size > max_size:
        head.refusal = (431, "Request header fields too large")
    return head


class RequestDecoder:
    """One connection's HPACK decoder for request heads, with the cache described above."""

    __slots__ = ("cache", "decoder", "max_size", "root_path", "table")

    CACHE_MAX = 64

    def __init__(self, max_size: int, hard_limit: int, root_path: str) -> None:
        self.decoder = Decoder(max_header_list_size=hard_limit)
        self.table = self.decoder.header_table = _Table()
        self.max_size = max_size
        self.root_path = root_path
        self.cache: dict[bytes, tuple[int, RequestHead]] = {}

    def request(self, block: bytes) -> RequestHead:
        """Decode and check a request's field block; raises ConnectionFailure for HPACK faults."""
        hit = self.cache.get(block)
        table = self.table
        if hit is not None and hit[0] == table.version:
            return hit[1]
        version = table.version
        head = parse_request(self.fields(block), self.max_size, self.root_path)
        if table.version == version:
            cache = self.cache
            if len(cache) >= self.CACHE_MAX:
                cache.clear()
            cache[block] = (version, head)
        return head

    def fields(self, block: bytes) -> list[tuple[bytes, bytes]]:
        """Decode a field block (also trailers, which are decoded only to keep HPACK in step)."""
        try:
            return self.decoder.decode(block, raw=True)  # type: ignore[return-value]
        except OversizedHeaderListError:
            raise ConnectionFailure(ENHANCE_YOUR_CALM, "header list far over the limit") from None
        except (HPACKError, IndexError, TypeError, ValueError) as exc:
            raise ConnectionFailure(COMPRESSION_ERROR, f"HPACK decoding failed: {exc}") from None
