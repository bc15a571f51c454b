"""HTTP/1 wire details: status lines, Date/Server block, canned errors, targets, header lines."""

from __future__ import annotations

import http
import re
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote_to_bytes

import httptools

STATUS_LINES: dict[int, bytes] = {
    s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode()) for s in http.HTTPStatus
}


def status_line(status: int) -> bytes:
    line = STATUS_LINES.get(status)
    if line is None:
        line = b"HTTP/1.1 %d \r\n" % status
    return line


def date_value() -> bytes:
    return formatdate(usegmt=True).encode()


class CommonHeaders:
    """The Date and Server header lines every response carries, rebuilt once a second.

    One instance per server; connections read `.block` when they write a head, so the
    per-request cost is an attribute read.
    """

    __slots__ = ("block", "date", "server")

    def __init__(self, date: bool, server: bool) -> None:
        self.date = date
        self.server = server
        self.block = b""
        self.refresh()

    def refresh(self) -> None:
        block = b""
        if self.date:
            block += b"date: " + date_value() + b"\r\n"
        if self.server:
            block += b"server: dartle\r\n"
        self.block = block


def error_response(common: CommonHeaders, status: int, message: str) -> bytes:
    """A complete plain-text response that also tells the client we are closing."""
    body = message.encode() + b"\n"
    return b"".join(
        (
            status_line(status),
            common.block,
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        )
    )


# Request targets seen recently -> (path, raw_path, query_string) for the scope. Most
# traffic repeats a few URLs; parsing and decoding each time is measurable per request.
TARGETS: dict[bytes, tuple[str, bytes, bytes]] = {}
TARGETS_MAX = 1024


def parse_target(url: bytes, root_path: str) -> tuple[str, bytes, bytes]:
    """Split and decode a request target; remembered for origin-form targets.

    Raises ValueError for a target no request may carry (RFC 9112: no fragment).
    """
    if b"#" in url:
        raise ValueError("a request target must not contain a fragment ('#')")
    if url[:1] == b"/":
        raw_path, _, query = url.partition(b"?")
    elif url == b"*":
        raw_path, query = b"*", b""
    else:
        parsed = httptools.parse_url(url)  # absolute-form: http://host/path?query
        raw_path = parsed.path or b"/"
        query = parsed.query or b""
    if b"%" in raw_path:
        path = unquote_to_bytes(raw_path).decode("utf-8", "replace")
    else:
        path = raw_path.decode("utf-8", "replace")
    if root_path:
        path = root_path + path
        raw_path = root_path.encode() + raw_path
    target = (path, raw_path, query)
    if url[:1] == b"/" and len(url) <= 256 and not root_path:
        if len(TARGETS) >= TARGETS_MAX:
            TARGETS.clear()
        TARGETS[url] = target
    return target


# Formatted response header lines by (name, value): a block that misses its cache below
# is mostly made of lines seen before. Framing headers are never in it.
HEADER_LINES: dict[tuple[bytes, bytes], bytes] = {}
HEADER_LINES_MAX = 4096
# CR, LF or NUL in a response header would let a value forge headers or a second response.
UNSAFE = re.compile(rb"[\r\n\0]").search
# Response headers the app may send that the framing decides itself (ASGI: an app's
# Transfer-Encoding is ignored; Content-Length is checked against the body).
FRAMING_HEADERS = frozenset((b"content-length", b"transfer-encoding", b"connection"))


def header_line(item: Any, name: bytes, value: bytes) -> bytes:
    if type(name) is not bytes or type(value) is not bytes:
        raise TypeError(f"header name and value must be bytes, not {item!r}")
    if UNSAFE(name) or UNSAFE(value) or not name:
        raise ValueError(f"response header {name!r} has a CR, LF or NUL byte, or no name")
    line = b"%s: %s\r\n" % (name, value)
    if type(item) is tuple:
        if len(HEADER_LINES) >= HEADER_LINES_MAX:
            HEADER_LINES.clear()
        HEADER_LINES[item] = line
    return line


# A response's header block: (lines, lines_without_length, length, closes, plain) - the
# app's header lines in its order with Content-Length, normalised, where the app put it
# (ASGI keeps the order); the same without Content-Length (204, chunked with trailers);
# the length the app gave (-1: none); whether it asked to close the connection; and when
# it gave a length and did not ask to close, the lines with the blank line that ends a
# head (else None): what a plain keep-alive response sends as it is. Remembered by the
# app's header list as a tuple: apps send the same few lists again and again, and one
# dict lookup per response replaces checking and formatting each line.
HeadBlock = tuple[bytes, bytes, int, bool, bytes | None]
HEAD_BLOCKS: dict[tuple[Any, ...], HeadBlock] = {}
HEAD_BLOCKS_MAX = 1024


def head_block(headers: Any) -> HeadBlock:
    """The block of the app's `http.response.start` headers, checked (see HEAD_BLOCKS).

    Raises TypeError or ValueError, naming the header, for what no response may carry.
    """
    try:
        key = tuple(headers)
        hash(key)
    except TypeError:
        try:  # header pairs given as lists: the same rules
            key = tuple(tuple(item) for item in headers)
            hash(key)
        except TypeError:
            raise TypeError(
                f"http.response.start headers must be [name, value] byte string pairs, not {headers!r}"
            ) from None
    block = HEAD_BLOCKS.get(key)
    if block is not None:
        return block
    lines: list[bytes] = []
    without: list[bytes] = []
    length = -1
    length_at = -1
    closes = False
    try:
        for item in key:
            line = HEADER_LINES.get(item)
            if line is None:
                name, value = item
                lname = name.lower()
                if lname in FRAMING_HEADERS:
                    if lname == b"content-length":
                        length = int(value)
                        length_at = len(lines)
                        lines.append(b"")  # filled in below: the last one counts
                    elif lname == b"connection" and b"close" in value.lower():
                        closes = True
                    continue
                line = header_line(item, name, value)
            lines.append(line)
            without.append(line)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"http.response.start headers: {exc}") from None
    if length >= 0:
        lines[length_at] = b"content-length: %d\r\n" % length
    else:
        length = -1  # a negative one is no length: the server frames the body itself
    joined = b"".join(lines)
    plain = joined + b"\r\n" if length >= 0 and not closes else None
    block = (joined, b"".join(without), length, closes, plain)
    if len(HEAD_BLOCKS) >= HEAD_BLOCKS_MAX:
        HEAD_BLOCKS.clear()
    HEAD_BLOCKS[key] = block
    return block


# Host field values already found valid (RFC 9112 3.2: uri-host [":" port]); most
# traffic repeats a few, and a regex per request is measurable.
HOSTS: set[bytes] = set()
_HOSTS_MAX = 1024
_HOST = re.compile(
    rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?"
).fullmatch


def valid_host(value: bytes) -> bool:
    """Whether `value` is a valid Host field value (no userinfo, no whitespace)."""
    if value in HOSTS:
        return True
    if _HOST(value) is None:
        return False
    if len(HOSTS) >= _HOSTS_MAX:
        HOSTS.clear()
    HOSTS.add(value)
    return True


def target_authority(url: bytes) -> bytes | None:
    """The authority of an absolute-form target (http://authority/path), else None."""
    scheme, sep, rest = url.partition(b"://")
    if not sep or scheme.lower() not in (b"http", b"https"):
        return None
    return rest.split(b"/", 1)[0].split(b"?", 1)[0]


def connection_addresses(
    transport: Any, trusted: Any, proxy_headers: bool
) -> tuple[Any, Any, bool]:
    """(server, client, proxy_trusted) of a new connection, in the scope's forms.

    server is (host, port), or (path, None) on a Unix socket; client is (host, port) or
    None; proxy_trusted says whether this peer's X-Forwarded-* headers are believed.
    """
    sockname = transport.get_extra_info("sockname")
    peername = transport.get_extra_info("peername")
    server: Any = None
    client: Any = None
    if isinstance(sockname, tuple):
        server = (str(sockname[0]), int(sockname[1]))
    elif sockname:
        server = (str(sockname), None)  # Unix socket: [path, None]
    if isinstance(peername, tuple):
        client = (str(peername[0]), int(peername[1]))
    trusts = proxy_headers and (client[0] if client else None) in trusted
    return server, client, trusts


def http_scope_template(
    http_version: str, server: Any, client: Any, scheme: str, root_path: str,
    extensions: dict[str, Any],
) -> dict[str, Any]:
    """The http scope every request of one connection starts from (a shallow copy each)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": http_version,
        "server": server,
        "client": client,
        "scheme": scheme,
        "method": "GET",
        "root_path": root_path,
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [],
        "state": {},
        "extensions": extensions,
    }
