"""Subtly invalid HTTP/1.1 requests, and pipelines that mix them with valid ones.

Each mutation takes a valid `Spec` (strategies.py) and breaks exactly one rule of RFC 9112
or RFC 9110, returning a `Sent` that says which outcomes the RFC allows: "reject" (a 4xx,
or 501 for transfer codings, the connection closed, the request never delivered) or
"either" (refuse, or serve the repair the RFC names, which the test then checks).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from hypothesis import strategies as st

from tests.robustness.strategies import (
    CTL_IN_VALUE,
    OBS_TEXT,
    Chunk,
    Expected,
    Field,
    Sent,
    Spec,
    as_valid,
    chunks_of,
    closing_specs,
    field_values,
    names,
    valid_specs,
)

# -- mutations: each returns a Sent that breaks exactly one rule ---------------------------


def _insert_field(draw: Any, spec: Spec, line: bytes) -> bytes:
    """The spec's wire with `line` (a raw field line, CRLF included) among its fields."""
    at = draw(st.integers(0, len(spec.fields)))
    lines = [f.line() for f in spec.fields]
    lines.insert(at, line)
    lead = b"\r\n" if spec.leading_crlf else b""
    return lead + spec.request_line() + b"".join(lines) + b"\r\n" + spec.body_wire()


def _with_field(draw: Any, spec: Spec, name: bytes, value: bytes) -> tuple[bytes, list[Any]]:
    """Insert a well-formed field; returns the wire and the expected headers."""
    at = draw(st.integers(0, len(spec.fields)))
    fields = [*spec.fields]
    fields.insert(at, Field(name, value))
    spec.fields = fields
    return spec.wire(), spec.expected_headers()


@st.composite
def m_ctl_in_name(draw: Any, spec: Spec) -> Sent:
    bad = draw(st.sampled_from(bytes([*range(0x00, 0x20), 0x7F]) + b' "(),/;<=>?@[\\]{}' + OBS_TEXT))
    name = draw(names).encode()
    at = draw(st.integers(1, len(name)))
    line = name[:at] + bytes([bad]) + name[at:] + b": v\r\n"
    return Sent(spec, _insert_field(draw, spec, line), "reject", f"byte {bad:#04x} in a field name", (400,))


@st.composite
def m_ws_before_colon(draw: Any, spec: Spec) -> Sent:
    gap = draw(st.sampled_from([b" ", b"\t", b"  "]))
    line = draw(names).encode() + gap + b": v\r\n"
    return Sent(spec, _insert_field(draw, spec, line), "reject", "whitespace before the colon", (400,))


@st.composite
def m_nul_or_cr_in_value(draw: Any, spec: Spec) -> Sent:
    """RFC 9110 5.5: a recipient MUST reject, or replace CR/NUL with SP."""
    bad = draw(st.sampled_from([b"\x00", b"\r"]))
    name = draw(names).encode()
    left, right = draw(field_values().filter(bool)), draw(field_values().filter(bool))
    wire, headers = _with_field(draw, spec, name, left + bad + right)
    headers = [
        (n, left + b" " + right if n == name.lower() and v == left + bad + right else v) for n, v in headers
    ]
    return Sent(spec, wire, "either", f"{bad!r} in a field value", (400,), headers=headers)


@st.composite
def m_ctl_in_value(draw: Any, spec: Spec) -> Sent:
    """RFC 9110 5.5: other CTLs are invalid, but a recipient MAY retain them."""
    bad = bytes([draw(st.sampled_from(CTL_IN_VALUE))])
    name = draw(names).encode()
    left, right = draw(field_values().filter(bool)), draw(field_values().filter(bool))
    wire, headers = _with_field(draw, spec, name, left + bad + right)
    return Sent(spec, wire, "either", f"{bad!r} in a field value", (400,), headers=headers)


@st.composite
def m_obs_fold(draw: Any, spec: Spec) -> Sent:
    """RFC 9112 5.2: reject with 400, or replace each obs-fold with SP before use."""
    name = draw(names).encode()
    left, right = draw(field_values().filter(bool)), draw(field_values().filter(bool))
    fold = b"\r\n" + draw(st.sampled_from([b" ", b"\t", b"  "]))
    line = name + b": " + left + fold + right + b"\r\n"
    at = draw(st.integers(0, len(spec.fields)))
    lines = [f.line() for f in spec.fields]
    lines.insert(at, line)
    wire = (b"\r\n" if spec.leading_crlf else b"") + spec.request_line() + b"".join(lines) + b"\r\n"
    headers: list[tuple[bytes, Expected]] = list(spec.expected_headers())
    headers.insert(at, (name.lower(), re.compile(re.escape(left) + rb"[ \t]+" + re.escape(right))))
    return Sent(spec, wire + spec.body_wire(), "either", "obs-fold", (400,), headers=headers)


@st.composite
def m_ws_after_start_line(draw: Any, spec: Spec) -> Sent:
    """RFC 9112 2.2: reject, or ignore each whitespace-preceded line."""
    line = draw(st.sampled_from([b" ", b"\t"])) + draw(names).encode() + b": v\r\n"
    lead = b"\r\n" if spec.leading_crlf else b""
    wire = lead + spec.request_line() + line + b"".join(f.line() for f in spec.fields) + b"\r\n"
    return Sent(spec, wire + spec.body_wire(), "either", "whitespace before the first field", (400,))


@st.composite
def m_bare_lf(draw: Any, spec: Spec) -> Sent:
    """RFC 9112 2.2: a recipient MAY take a bare LF as a line terminator in the head."""
    head = spec.head()
    ends = [m.start() for m in re.finditer(rb"\r\n", head)]
    at = draw(st.sampled_from(ends))
    wire = head[:at] + head[at + 1 :] + spec.body_wire()
    return Sent(spec, wire, "either", "bare LF in the head", (400,))


@st.composite
def m_request_line_whitespace(draw: Any, spec: Spec) -> Sent:
    """RFC 9112 3: a recipient MAY split the request line on any whitespace."""
    gap = st.sampled_from([b"  ", b"\t", b" \t", b"   "])
    method, target, version = spec.method.encode(), spec.target, b"HTTP/" + spec.version.encode()
    line = method + draw(gap) + target + draw(gap) + version + b"\r\n"
    rest = spec.head()[len(spec.request_line()) + (2 if spec.leading_crlf else 0) :]
    return Sent(spec, line + rest + spec.body_wire(), "either", "odd whitespace in the request line", (400,))


@st.composite
def m_bad_content_length(draw: Any, spec: Spec) -> Sent:
    value = draw(st.sampled_from([b"abc", b"-1", b"+5", b"0x5", b"1 2", b"5,6", b"1e3", b"5;", b"\xd9\xa3"]))
    spec = replace(spec, framing="length", body=b"hello")
    fields = [
        f for f in spec.fields if f.name.lower() not in (b"content-length", b"transfer-encoding", b"expect")
    ]
    spec.fields = fields
    wire = _insert_field(draw, spec, b"Content-Length: " + value + b"\r\n")
    return Sent(spec, wire, "reject", f"Content-Length {value!r}", (400,))


@st.composite
def m_duplicate_content_length(draw: Any, spec: Spec) -> Sent:
    body = draw(st.binary(min_size=1, max_size=20))
    spec = replace(
        spec,
        framing="length",
        body=body,
        fields=[
            f
            for f in spec.fields
            if f.name.lower() not in (b"content-length", b"transfer-encoding", b"expect")
        ],
    )
    other = len(body) + draw(st.integers(1, 5))
    first, second = (len(body), other) if draw(st.booleans()) else (other, len(body))
    if draw(st.booleans()):
        wire = _insert_field(draw, spec, b"Content-Length: %d, %d\r\n" % (first, second))
    else:
        spec.fields = [*spec.fields, Field(b"Content-Length", b"%d" % first)]
        wire = _insert_field(draw, spec, b"Content-Length: %d\r\n" % second)
    return Sent(spec, wire, "reject", "differing Content-Length values", (400,))


@st.composite
def m_same_content_length_twice(draw: Any, spec: Spec) -> Sent:
    """RFC 9110 8.6: reject, or take the repeated identical value once."""
    body = draw(st.binary(min_size=1, max_size=20))
    spec = replace(
        spec,
        framing="length",
        body=body,
        fields=[
            f
            for f in spec.fields
            if f.name.lower() not in (b"content-length", b"transfer-encoding", b"expect")
        ],
    )
    if draw(st.booleans()):
        spec.fields = [*spec.fields, Field(b"Content-Length", b"%d, %d" % (len(body), len(body)))]
    else:
        spec.fields = [*spec.fields, Field(b"Content-Length", b"%d" % len(body))] * 2
    spec.fields = draw(st.permutations(spec.fields))
    return Sent(
        spec,
        spec.wire(),
        "either",
        "the same Content-Length twice",
        (400,),
        loose=frozenset({b"content-length"}),
    )


@st.composite
def m_content_length_and_chunked(draw: Any, spec: Spec) -> Sent:
    """RFC 9112 6.3: reject, or use the chunked framing and close after the response."""
    body = draw(st.binary(max_size=40))
    spec = replace(
        spec,
        version="1.1",
        framing="chunked",
        body=body,
        fields=[
            f
            for f in spec.fields
            if f.name.lower() not in (b"content-length", b"transfer-encoding", b"expect", b"connection")
        ],
    )
    spec.chunks = draw(chunks_of(body))
    spec.trailers = []
    length = draw(st.integers(0, 60))
    spec.fields = draw(
        st.permutations(
            [*spec.fields, Field(b"Transfer-Encoding", b"chunked"), Field(b"Content-Length", b"%d" % length)]
        )
    )
    return Sent(
        spec,
        spec.wire(),
        "either",
        "Content-Length with Transfer-Encoding",
        (400,),
        closes=True,
        loose=frozenset({b"content-length"}),
    )


@st.composite
def m_bad_transfer_coding(draw: Any, spec: Spec) -> Sent:
    """chunked not final (MUST 400) or an unknown coding (SHOULD 501), or chunked twice."""
    value = draw(
        st.sampled_from(
            [
                b"chunked, gzip",
                b"gzip",
                b"gzip, chunked",
                b"chunked, chunked",
                b"identity",
                b"x-custom, chunked",
            ]
        )
    )
    spec = replace(
        spec,
        version="1.1",
        framing="chunked",
        body=b"abc",
        fields=[
            f
            for f in spec.fields
            if f.name.lower() not in (b"content-length", b"transfer-encoding", b"expect")
        ],
    )
    spec.chunks = [Chunk(b"abc", b"3")]
    spec.trailers = []
    spec.fields = [*spec.fields, Field(b"Transfer-Encoding", value)]
    return Sent(spec, spec.wire(), "reject", f"Transfer-Encoding {value!r}", (400, 501))


@st.composite
def m_overlong(draw: Any, spec: Spec) -> Sent:
    """Past the default --max-header-size (32 KiB): a long field or a long target."""
    size = 33 * 1024 + draw(st.integers(0, 4096))
    if draw(st.booleans()):
        wire = _insert_field(draw, spec, b"X-Long: " + b"a" * size + b"\r\n")
        return Sent(spec, wire, "reject", "an overlong field line", (400, 431))
    long = replace(spec, raw_path=spec.raw_path + b"/" + b"b" * size)
    return Sent(long, long.wire(), "reject", "an overlong request target", (400, 414, 431))


@st.composite
def m_bad_target(draw: Any, spec: Spec) -> Sent:
    bad = draw(st.sampled_from(bytes([*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F])))
    at = draw(st.integers(1, len(spec.raw_path)))
    broken = replace(spec, raw_path=spec.raw_path[:at] + bytes([bad]) + spec.raw_path[at:])
    return Sent(broken, broken.wire(), "reject", f"byte {bad:#04x} in the target", (400,))


@st.composite
def m_bad_version(draw: Any, spec: Spec) -> Sent:
    version = draw(
        st.sampled_from(
            [
                b"HTTP/1.10",
                b"HTTP/01.1",
                b"http/1.1",
                b"HTTP/1",
                b"HTTP/1.1.1",
                b"HTTP/ 1.1",
                b"HTTPS/1.1",
                b"HTTP/a.b",
            ]
        )
    )
    line = spec.method.encode() + b" " + spec.target + b" " + version + b"\r\n"
    rest = spec.head()[len(spec.request_line()) + (2 if spec.leading_crlf else 0) :]
    return Sent(spec, line + rest + spec.body_wire(), "reject", f"version {version!r}", (400, 505))


def _chunked(draw: Any, spec: Spec) -> Spec:
    body = draw(st.binary(min_size=1, max_size=40))
    spec = replace(
        spec,
        version="1.1",
        framing="chunked",
        body=body,
        fields=[
            f
            for f in spec.fields
            if f.name.lower() not in (b"content-length", b"transfer-encoding", b"expect")
        ],
    )
    spec.fields = [*spec.fields, Field(b"Transfer-Encoding", b"chunked")]
    spec.chunks = draw(chunks_of(body))
    spec.trailers = []
    return spec


@st.composite
def m_bad_chunk_size(draw: Any, spec: Spec) -> Sent:
    spec = _chunked(draw, spec)
    size = draw(st.sampled_from([b"zz", b"-1", b"0x3", b"", b" 3", b"3 ", b"+3", b"3\t", b"f" * 24]))
    at = draw(st.integers(0, len(spec.chunks) - 1))
    spec.chunks[at] = replace(spec.chunks[at], size=size, ext=b"")
    return Sent(spec, spec.wire(), "reject", f"chunk size {size!r}", (400,), body_level=True)


@st.composite
def m_chunk_overrun(draw: Any, spec: Spec) -> Sent:
    spec = _chunked(draw, spec)
    at = draw(st.integers(0, len(spec.chunks) - 1))
    chunk = spec.chunks[at]
    spec.chunks[at] = replace(chunk, data=chunk.data + draw(st.binary(min_size=1, max_size=5)))
    return Sent(spec, spec.wire(), "reject", "chunk data longer than its size", (400,), body_level=True)


@st.composite
def m_bad_chunk_ext(draw: Any, spec: Spec) -> Sent:
    spec = _chunked(draw, spec)
    ext = draw(st.sampled_from([b";a\x01", b";\x00", b";a=\x7f", b";a=b\x0c", b';a="x\x00"']))
    at = draw(st.integers(0, len(spec.chunks) - 1))
    spec.chunks[at] = replace(spec.chunks[at], ext=ext)
    return Sent(spec, spec.wire(), "reject", f"chunk extension {ext!r}", (400,), body_level=True)


@st.composite
def m_bad_chunk_line_end(draw: Any, spec: Spec) -> Sent:
    """Chunk lines end in CRLF (RFC 9112 7.1); the bare-LF leniency is for the head only."""
    spec = _chunked(draw, spec)
    at = draw(st.integers(0, len(spec.chunks) - 1))
    chunk = spec.chunks[at]
    body = b"".join(c.wire() for c in spec.chunks[:at])
    if draw(st.booleans()):
        broken = chunk.size + chunk.ext + b"\n" + chunk.data + b"\r\n"
    else:
        broken = chunk.size + chunk.ext + b"\r\n" + chunk.data + b"\n"
    body += broken + b"".join(c.wire() for c in spec.chunks[at + 1 :]) + b"0\r\n\r\n"
    return Sent(spec, spec.head() + body, "reject", "bare LF in a chunk line", (400,), body_level=True)


@st.composite
def m_bad_trailer(draw: Any, spec: Spec) -> Sent:
    spec = _chunked(draw, spec)
    line = draw(st.sampled_from([b"NoColon\r\n", b"X-T : v\r\n", b"X\x01T: v\r\n", b"X-T: a\x00b\r\n"]))
    body = b"".join(c.wire() for c in spec.chunks) + b"0\r\n" + line + b"\r\n"
    either = b"\x00" in line  # NUL in a value: reject, or replace it (trailers never reach ASGI)
    verdict = "either" if either else "reject"
    return Sent(spec, spec.head() + body, verdict, f"trailer line {line!r}", (400,), body_level=True)


HEAD_MUTATIONS = [
    m_ctl_in_name,
    m_ws_before_colon,
    m_nul_or_cr_in_value,
    m_ctl_in_value,
    m_obs_fold,
    m_ws_after_start_line,
    m_bare_lf,
    m_request_line_whitespace,
    m_bad_content_length,
    m_duplicate_content_length,
    m_same_content_length_twice,
    m_content_length_and_chunked,
    m_bad_transfer_coding,
    m_overlong,
    m_bad_target,
    m_bad_version,
]
BODY_MUTATIONS = [m_bad_chunk_size, m_chunk_overrun, m_bad_chunk_ext, m_bad_chunk_line_end, m_bad_trailer]
MUTATIONS = HEAD_MUTATIONS + BODY_MUTATIONS


@st.composite
def mutated(draw: Any) -> Sent:
    spec = draw(valid_specs(version="1.1"))
    mutation = draw(st.sampled_from(MUTATIONS))
    sent: Sent = draw(mutation(spec))
    return sent


@st.composite
def pipelines(draw: Any, invalid: bool) -> list[Sent]:
    """Valid requests, then (if `invalid`) a mutated one, then requests that may never run."""
    if invalid:
        before = [as_valid(s) for s in draw(st.lists(valid_specs(version="1.1"), max_size=3))]
        after = [as_valid(s) for s in draw(st.lists(valid_specs(version="1.1"), max_size=2))]
        return [*before, draw(mutated()), *after]
    before = [as_valid(s) for s in draw(st.lists(valid_specs(version="1.1"), max_size=3))]
    last = draw(st.one_of(valid_specs(), closing_specs()))
    if not last.keeps_alive():
        # A client must not send more after "close" (RFC 9112 9.6); what the server does
        # when one does is in the compliance table.
        return [*before, as_valid(last)]
    tail = [as_valid(s) for s in draw(st.lists(valid_specs(version="1.1"), max_size=2))]
    return [*before, as_valid(last), *tail]


@st.composite
def split_points(draw: Any, length: int) -> list[int]:
    """Where to cut a byte stream into separate writes (0 to 8 cuts)."""
    if length < 2:
        return []
    return sorted(set(draw(st.lists(st.integers(1, length - 1), max_size=8))))
