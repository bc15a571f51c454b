"""Hypothesis strategies for valid HTTP/1.1 requests, and the model they are drawn into.

A request is drawn as a `Spec` (method, target, fields, framing, body), serialised to the
bytes a client sends, and paired with what RFC 9112 requires of the server: a `Sent`.
A valid request must be served with a scope that matches the input. mutations.py breaks
one rule at a time and says which outcomes the RFC allows then:

- "reject": a 4xx (sometimes 501, listed per case), the connection closed, and the request
  never delivered to the app (for an error in the body framing, the app may have seen the
  head but never the whole body);
- "either": the RFC lets the recipient refuse (as "reject") or repair the message (replace
  a bare CR/NUL or an obs-fold with SP, ignore a whitespace-preceded line, parse lenient
  whitespace in the request line); if served, the scope must show the repaired message.

Host rules and the fragment in a target are checked in the compliance table instead
(test_compliance.py): the server currently breaks them on every request, which would mask
everything else here.
"""

from __future__ import annotations

import re
import string
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

TCHAR = "!#$%&'*+-.^_`|~" + string.digits + string.ascii_letters
# Header names with a meaning for the framing or the recorder: drawn only on purpose.
RESERVED = {
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "expect",
    "te",
    "upgrade",
    "x-rid",
    "x-forwarded-for",
    "x-forwarded-proto",
    "proxy-connection",
    "keep-alive",
    "trailer",
}
VCHAR = bytes(range(0x21, 0x7F))
OBS_TEXT = bytes(range(0x80, 0x100))
UNRESERVED = string.ascii_letters + string.digits + "-._~"
SUB_DELIMS = "!$&'()*+,;="
PCHAR_LITERAL = UNRESERVED + SUB_DELIMS + ":@"
CTL_IN_VALUE = bytes([*range(0x01, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
ENDPOINT = "/robust-echo"

Expected = bytes | re.Pattern[bytes]


@dataclass
class Field:
    name: bytes
    value: bytes  # the field value without surrounding whitespace
    lead: bytes = b" "
    trail: bytes = b""

    def line(self) -> bytes:
        return self.name + b":" + self.lead + self.value + self.trail + b"\r\n"


@dataclass
class Chunk:
    data: bytes
    size: bytes  # the hex digits as sent (case and leading zeros vary)
    ext: bytes = b""

    def wire(self) -> bytes:
        return self.size + self.ext + b"\r\n" + self.data + b"\r\n"


@dataclass
class Spec:
    """A request before serialisation; `fields` are in wire order, framing fields included."""

    rid: str
    method: str
    path_text: str  # the decoded path the app must see
    raw_path: bytes
    query: bytes
    version: str
    fields: list[Field]
    framing: str = "none"  # "none" | "length" | "chunked"
    body: bytes = b""
    chunks: list[Chunk] = field(default_factory=list)
    trailers: list[Field] = field(default_factory=list)
    leading_crlf: bool = False

    @property
    def target(self) -> bytes:
        return self.raw_path + (b"?" + self.query if self.query else b"")

    def request_line(self) -> bytes:
        return b"%s %s HTTP/%s\r\n" % (self.method.encode(), self.target, self.version.encode())

    def head(self) -> bytes:
        lead = b"\r\n" if self.leading_crlf else b""
        return lead + self.request_line() + b"".join(f.line() for f in self.fields) + b"\r\n"

    def body_wire(self) -> bytes:
        if self.framing == "chunked":
            last = b"0\r\n" + b"".join(f.line() for f in self.trailers) + b"\r\n"
            return b"".join(c.wire() for c in self.chunks) + last
        return self.body

    def wire(self) -> bytes:
        return self.head() + self.body_wire()

    def keeps_alive(self) -> bool:
        options = b",".join(f.value.lower() for f in self.fields if f.name.lower() == b"connection")
        if self.version == "1.0":
            return b"keep-alive" in options
        return b"close" not in options

    def expected_headers(self) -> list[tuple[bytes, Expected]]:
        return [(f.name.lower(), f.value) for f in self.fields]


@dataclass
class Sent:
    """One request on the wire and the outcomes RFC 9112 allows for it."""

    spec: Spec
    wire: bytes
    verdict: str = "valid"  # "valid" | "reject" | "either"
    why: str = "valid"
    statuses: tuple[int, ...] = ()  # refusal statuses allowed ("reject", "either")
    body_level: bool = False  # refused for its body framing: the app may have seen the head
    headers: list[tuple[bytes, Expected]] | None = None  # expected if served (None: spec's)
    loose: frozenset[bytes] = frozenset()  # header names not compared
    closes: bool = False  # if served, the server must close after answering

    @property
    def rid(self) -> str:
        return self.spec.rid

    def expected_headers(self) -> list[tuple[bytes, Expected]]:
        headers = self.spec.expected_headers() if self.headers is None else self.headers
        return [(name, value) for name, value in headers if name not in self.loose]

    def must_close_after(self) -> bool:
        return self.closes or not self.spec.keeps_alive()


def new_rid() -> str:
    return "p-" + uuid.uuid4().hex[:12]


# -- valid pieces ------------------------------------------------------------------------

names = st.text(TCHAR, min_size=1, max_size=16).filter(lambda n: n.lower() not in RESERVED)
ows = st.sampled_from([b"", b" ", b"\t", b"  ", b" \t"])


@st.composite
def field_values(draw: Any) -> bytes:
    """field-value: field-vchar (VCHAR / obs-text) with SP/HTAB only inside."""
    edge = st.sampled_from(VCHAR + OBS_TEXT).map(lambda b: bytes([b]))
    inner = st.one_of(edge, st.sampled_from([b" ", b"\t"]))
    if draw(st.booleans()) and draw(st.booleans()):
        return b""
    middle = draw(st.lists(inner, max_size=20))
    if not middle:
        return draw(edge)
    return draw(edge) + b"".join(middle) + draw(edge)


@st.composite
def plain_fields(draw: Any) -> Field:
    return Field(draw(names).encode(), draw(field_values()), draw(ows), draw(ows))


@st.composite
def segments(draw: Any) -> tuple[str, bytes]:
    """A path segment: (decoded text, raw bytes), percent-encoding some characters."""
    text = draw(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8))
    raw = "".join(ch if ch in PCHAR_LITERAL and draw(st.booleans()) else quote(ch, safe="") for ch in text)
    return text, raw.encode("ascii")


@st.composite
def queries(draw: Any, rid: str) -> bytes:
    extra = draw(st.text(PCHAR_LITERAL + "/?", max_size=24))
    return f"rid={rid}".encode() + (b"&" + extra.encode() if extra else b"")


@st.composite
def hosts(draw: Any) -> bytes:
    name = draw(st.text(UNRESERVED, min_size=1, max_size=20))
    port = draw(st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}")))
    return (name + port).encode()


@st.composite
def chunk_exts(draw: Any) -> bytes:
    """chunk-ext without BWS: ;name or ;name=token or ;name="quoted"."""
    out = b""
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.text(TCHAR, min_size=1, max_size=6)).encode()
        kind = draw(st.sampled_from(["bare", "token", "quoted"]))
        if kind == "token":
            name += b"=" + draw(st.text(TCHAR, min_size=1, max_size=6)).encode()
        elif kind == "quoted":
            text = draw(st.text(string.ascii_letters + string.digits + " !#", max_size=6))
            name += b'="' + text.encode() + b'"'
        out += b";" + name
    return out


@st.composite
def chunks_of(draw: Any, body: bytes) -> list[Chunk]:
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(body) - 1)), max_size=4))))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=False)]
    out = []
    for piece in filter(None, pieces):
        digits = b"%x" % len(piece)
        if draw(st.booleans()):
            digits = digits.upper()
        digits = b"0" * draw(st.integers(0, 2)) + digits
        out.append(Chunk(piece, digits, draw(chunk_exts())))
    return out


@st.composite
def valid_specs(draw: Any, version: str | None = None) -> Spec:
    rid = new_rid()
    method = draw(st.sampled_from(METHODS))
    parts = draw(st.lists(segments(), max_size=3))
    path_text = ENDPOINT + "".join("/" + text for text, _ in parts)
    raw_path = ENDPOINT.encode() + b"".join(b"/" + raw for _, raw in parts)
    version = version or draw(st.sampled_from(["1.1", "1.1", "1.1", "1.0"]))
    fields = [Field(b"Host", draw(hosts()), draw(ows), draw(ows))]
    fields += draw(st.lists(plain_fields(), max_size=5))
    spec = Spec(rid, method, path_text, raw_path, draw(queries(rid)), version, fields)
    spec.framing = draw(
        st.sampled_from(["none", "length", "chunked"] if version == "1.1" else ["none", "length"])
    )
    if spec.framing != "none":
        spec.body = draw(st.binary(max_size=300))
    if spec.framing == "length":
        fields.append(Field(b"Content-Length", b"%d" % len(spec.body)))
    elif spec.framing == "chunked":
        fields.append(Field(b"Transfer-Encoding", draw(st.sampled_from([b"chunked", b"Chunked"]))))
        spec.chunks = draw(chunks_of(spec.body))
        spec.trailers = draw(st.lists(plain_fields(), max_size=2))
    if spec.body and version == "1.1" and draw(st.booleans()) and draw(st.booleans()):
        fields.append(Field(b"Expect", b"100-continue"))
    if version == "1.0" and draw(st.booleans()):
        fields.append(Field(b"Connection", b"keep-alive"))
    spec.fields = draw(st.permutations(fields))
    spec.leading_crlf = draw(st.booleans()) and draw(st.booleans())
    return spec


def as_valid(spec: Spec) -> Sent:
    return Sent(spec, spec.wire())


@st.composite
def closing_specs(draw: Any) -> Spec:
    """A valid request after which the server must not process another (RFC 9112 9.6)."""
    spec = draw(valid_specs())
    if spec.version == "1.1":
        spec.fields.insert(draw(st.integers(0, len(spec.fields))), Field(b"Connection", b"close"))
    else:
        spec.fields = [f for f in spec.fields if f.name != b"Connection"]
    return spec
