"""A strict reference reading of an HTTP/1.1 request stream (RFC 9112, RFC 9110), for oracles.

`read_stream(data)` walks a byte stream the way RFC 9112 says a server must, and returns
the complete, valid requests it holds, in order, and why it stopped:

- "end":        every byte belongs to a complete, valid request;
- "incomplete": the stream ends inside a request (the server must wait, not deliver it);
- "close":      a request asked to close the connection; what follows must not be processed;
- "reject":     the next request is invalid in a way the RFC says must not be processed
                (bad framing, bad field syntax, an unsupported transfer coding, ...);
- "lenient":    the next request has something the RFC lets a server either refuse or
                repair (obs-fold, a bare LF or CR, odd whitespace in the request line, a CTL
                in a value, Content-Length with Transfer-Encoding, ...) or may refuse as
                unsupported (an unknown method, a target that is not origin-form, Upgrade,
                an unknown expectation). From there on a server's answer is not compared.

The Host rules (RFC 9112 3.2) and the fragment in a target are counted as "lenient" by
default: dartle breaks both today (see test_compliance.py); pass `strict_host=True` to
make them "reject".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TCHAR = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
HEX = re.compile(rb"[0-9A-Fa-f]+")
DIGITS = re.compile(rb"[0-9]+")
# origin-form: absolute-path [ "?" query ], pchar = unreserved / pct-encoded / sub-delims / ":" / "@"
_PCHAR = rb"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})"
ORIGIN_FORM = re.compile(rb"(?:/" + _PCHAR + rb"*)+(?:\?(?:" + _PCHAR + rb"|[/?])*)?")
URI_CHARS = re.compile(rb"[!-~]+")  # printable ASCII, no SP: anything else breaks the request line
HOST_VALUE = re.compile(
    rb"(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*(?::[0-9]*)?|\[[0-9A-Fa-f:.]+\](?::[0-9]*)?"
)
QUOTED = re.compile(rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t !-~\x80-\xff])*"')
FIELD_VALUE_OK = re.compile(rb"[\t !-~\x80-\xff]*")
SUPPORTED_METHODS = frozenset({b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"TRACE"})
MAX_LENGTH = 2**63 - 1
HEAD_LIMIT = 32 * 1024  # dartle's default --max-header-size


@dataclass
class Request:
    method: bytes
    target: bytes
    version: str  # "1.1" or "1.0"
    headers: list[tuple[bytes, bytes]]  # names lowercased, values without surrounding OWS
    body: bytes = b""
    close: bool = False

    @property
    def raw_path(self) -> bytes:
        return self.target.partition(b"?")[0]

    @property
    def query(self) -> bytes:
        return self.target.partition(b"?")[2]


@dataclass
class Reading:
    requests: list[Request] = field(default_factory=list)
    stop: str = "end"
    why: str = ""


class _Stop(Exception):
    def __init__(self, stop: str, why: str) -> None:
        super().__init__(why)
        self.stop = stop
        self.why = why


def _lenient(why: str) -> _Stop:
    return _Stop("lenient", why)


def _reject(why: str) -> _Stop:
    return _Stop("reject", why)


class _Cursor:
    def __init__(self, data: bytes, at: int) -> None:
        self.data = data
        self.at = at

    def line(self) -> bytes:
        """The next line without its CRLF; a bare LF or CR is a leniency of its own."""
        end = self.data.find(b"\n", self.at)
        if end < 0:
            raise _Stop("incomplete", "the stream ends inside a line")
        if end == self.at or self.data[end - 1 : end] != b"\r":
            raise _lenient("a line ends in a bare LF")
        line = self.data[self.at : end - 1]
        self.at = end + 1
        if b"\r" in line:
            raise _lenient("a bare CR inside a line")
        return line

    def take(self, count: int) -> bytes:
        if self.at + count > len(self.data):
            raise _Stop("incomplete", "the stream ends inside a body")
        out = self.data[self.at : self.at + count]
        self.at += count
        return out


def read_stream(data: bytes, strict_host: bool = False) -> Reading:
    """Every complete request in `data`, and why reading stopped (see the module doc)."""
    reading = Reading()
    at = 0
    while True:
        # RFC 9112 2.2: empty lines before a request line SHOULD be ignored.
        while data.startswith(b"\r\n", at):
            at += 2
        if at >= len(data):
            reading.stop = "end"
            return reading
        if data[at:] == b"\r":
            reading.stop, reading.why = "incomplete", "the stream ends inside an empty line"
            return reading
        if data.startswith(b"\n", at):
            reading.stop, reading.why = "lenient", "a bare LF before the request line"
            return reading
        cursor = _Cursor(data, at)
        try:
            request = _read_request(cursor, strict_host)
        except _Stop as stop:
            reading.stop, reading.why = stop.stop, stop.why
            return reading
        reading.requests.append(request)
        at = cursor.at
        if request.close:
            reading.stop = "close" if at < len(data) else "end"
            reading.why = "the request asked to close the connection"
            return reading


def _read_request(cursor: _Cursor, strict_host: bool) -> Request:
    start = cursor.at
    method, target, version = _request_line(cursor.line())
    headers = _fields(cursor, first=True)
    if cursor.at - start > HEAD_LIMIT // 2:
        # The server's --max-header-size (32 KiB by default) is its policy, and where
        # exactly it counts is its business: near or past it, 431 and serving are both fine.
        raise _lenient("a request head near or past the server's size limit")
    request = Request(method, target, version, headers)
    _check_host(request, strict_host)
    options = {t.strip().lower() for n, v in headers if n == b"connection" for t in v.split(b",")}
    request.close = b"close" in options or (version == "1.0" and b"keep-alive" not in options)
    if any(n == b"upgrade" for n, _ in headers):
        raise _lenient("an Upgrade request (the server may switch protocols)")
    expect = [v.lower() for n, v in headers if n == b"expect"]
    if expect and expect != [b"100-continue"]:
        raise _lenient("an expectation other than 100-continue (417 allowed)")
    codings = [c.strip().lower() for n, v in headers if n == b"transfer-encoding" for c in v.split(b",")]
    lengths = [v for n, v in headers if n == b"content-length"]
    if codings:
        if version == "1.0":
            raise _lenient("Transfer-Encoding in HTTP/1.0 (faulty framing: refuse, or close after)")
        if lengths:
            raise _lenient("Content-Length with Transfer-Encoding (refuse, or chunked and close)")
        if codings[-1] != b"chunked" or codings.count(b"chunked") != 1 or len(codings) != 1:
            raise _reject(f"transfer codings {codings!r} (chunked must be the one, final coding)")
        request.body = _chunked_body(cursor)
    elif lengths:
        request.body = cursor.take(_content_length(lengths))
    return request


def _request_line(line: bytes) -> tuple[bytes, bytes, str]:
    parts = line.split(b" ")
    odd_spacing = len(parts) != 3
    if odd_spacing:
        # RFC 9112 3: a recipient MAY split on any whitespace and ignore it around the line
        parts = line.split()
        if len(parts) != 3:
            raise _reject(f"request line {line[:80]!r}")
    method, target, version = parts
    if not TCHAR.fullmatch(method):
        raise _reject(f"method {method[:40]!r}")
    if re.fullmatch(rb"HTTP/[0-9]\.[0-9]", version) is None:
        raise _reject(f"version {version[:40]!r}")
    if re.search(rb"[\x00-\x20\x7f]", target):
        raise _reject(f"a control byte in the target {target[:80]!r}")
    if odd_spacing:
        raise _lenient("odd whitespace in the request line")
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise _lenient(f"version {version!r} (1.x: SHOULD serve as 1.1; others: 505)")
    if method not in SUPPORTED_METHODS:
        raise _lenient(f"method {method[:40]!r} (unknown or unsupported: 400/405/501 allowed)")
    if not URI_CHARS.fullmatch(target):
        raise _lenient(f"a byte outside ASCII in the target {target[:80]!r} (SHOULD 400)")
    if b"#" in target:
        raise _lenient("a fragment in the target (dartle passes it on: known)")
    if not ORIGIN_FORM.fullmatch(target):
        raise _lenient(
            f"target {target[:80]!r} is not origin-form (absolute, authority, asterisk or malformed)"
        )
    return method, target, version.decode()[5:]


def _fields(cursor: _Cursor, first: bool) -> list[tuple[bytes, bytes]]:
    fields: list[tuple[bytes, bytes]] = []
    while True:
        line = cursor.line()
        if not line:
            return fields
        if line[:1] in (b" ", b"\t"):
            if first and not fields:
                raise _lenient("whitespace before the first field line (refuse, or ignore the line)")
            raise _lenient("obs-fold (refuse, or replace with SP)")
        name, colon, value = line.partition(b":")
        if not colon or not TCHAR.fullmatch(name):
            raise _reject(f"field line {line[:80]!r}")
        value = value.strip(b" \t")
        if not FIELD_VALUE_OK.fullmatch(value):
            raise _lenient(f"a control byte in the value of {name!r} (refuse, replace or retain)")
        fields.append((name.lower(), value))


def _check_host(request: Request, strict: bool) -> None:
    hosts = [v for n, v in request.headers if n == b"host"]
    problem = None
    if request.version == "1.1" and not hosts:
        problem = "an HTTP/1.1 request without Host"
    elif len(hosts) > 1:
        problem = "more than one Host"
    elif hosts and not HOST_VALUE.fullmatch(hosts[0]):
        problem = f"an invalid Host {hosts[0][:40]!r}"
    if problem is not None:
        raise _reject(problem) if strict else _lenient(problem + " (MUST 400; dartle serves it: known)")


def _content_length(values: list[bytes]) -> int:
    parts = [p.strip(b" \t") for v in values for p in v.split(b",")]
    if not all(DIGITS.fullmatch(p) for p in parts):
        raise _reject(f"Content-Length {values!r}")
    numbers = {int(p) for p in parts}
    if len(numbers) != 1:
        raise _reject(f"differing Content-Length values {values!r}")
    length = numbers.pop()
    if length > MAX_LENGTH:
        raise _reject(f"Content-Length {length} overflows")
    if len(parts) > 1:
        raise _lenient("a repeated Content-Length value (refuse, or use it once)")
    return length


def _chunked_body(cursor: _Cursor) -> bytes:
    body = bytearray()
    while True:
        size = _chunk_size_line(cursor)
        if size == 0:
            break
        body += cursor.take(size)
        if cursor.take(2) != b"\r\n":
            raise _reject("chunk data not followed by CRLF")
    for name, _ in _trailer_fields(cursor):
        if name in (b"content-length", b"transfer-encoding", b"host"):
            raise _lenient(f"a framing field {name!r} in the trailers")
    return bytes(body)


def _chunk_size_line(cursor: _Cursor) -> int:
    try:
        line = cursor.line()
    except _Stop as stop:
        if stop.stop == "lenient":  # the bare-LF leniency is for the head, not chunk lines
            raise _reject("a chunk line not ended by CRLF") from None
        raise
    match = HEX.match(line)
    if match is None:
        raise _reject(f"chunk size {line[:40]!r}")
    size = int(match.group(), 16)
    if size > MAX_LENGTH:
        raise _reject("chunk size overflows")
    _chunk_ext(line[match.end() :])
    return size


def _chunk_ext(ext: bytes) -> None:
    """chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] )

    Extensions are ignored by recipients (RFC 9112 7.1.1), so a malformed one made only of
    visible characters and whitespace does not change the framing: refusing it and ignoring
    it are both fine ("lenient"). A control byte in one is refused ("reject").
    """
    if re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", ext):
        raise _reject(f"a control byte in a chunk extension {ext[:40]!r}")
    try:
        _chunk_ext_syntax(ext)
    except _Stop as stop:
        if stop.stop == "reject":
            raise _lenient(stop.why + " (malformed but ignorable)") from None
        raise


def _chunk_ext_syntax(ext: bytes) -> None:
    while ext:
        stripped = ext.lstrip(b" \t")
        if stripped != ext:
            raise _lenient("BWS in a chunk extension (a recipient MUST accept it; llhttp refuses)")
        if not ext.startswith(b";"):
            raise _reject(f"chunk extension {ext[:40]!r}")
        ext = ext[1:]
        name = TCHAR.match(ext)
        if name is None:
            raise _reject(f"chunk extension name {ext[:40]!r}")
        ext = ext[name.end() :]
        if ext.startswith(b"="):
            ext = ext[1:]
            value = QUOTED.match(ext) if ext.startswith(b'"') else TCHAR.match(ext)
            if value is None:
                raise _reject(f"chunk extension value {ext[:40]!r}")
            ext = ext[value.end() :]


def _trailer_fields(cursor: _Cursor) -> list[tuple[bytes, bytes]]:
    try:
        return _fields(cursor, first=False)
    except _Stop as stop:
        if stop.why.startswith("a line ends in a bare LF"):
            raise _reject("a trailer line not ended by CRLF") from None
        raise
