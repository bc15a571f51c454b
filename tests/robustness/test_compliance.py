"""RFC 9112 compliance table: raw request bytes and the outcome the RFC requires of a server.

In the spirit of the public HTTP/1.1 conformance and smuggling suites: each row is the exact
bytes a client sends and what must happen.

- serve:  answered 200 by the app (/robust-echo), with the scope and body checked;
- refuse: a status from the row's list, the connection closed, the app never ran;
- either: the RFC allows both (a repair, or a refusal); the row says which repair is allowed.

Rows the server currently fails are strict xfails whose reason names the rule; they turn
red the day the server is fixed, so the mark can go. docs/robustness.md has the table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.robustness.conftest import app_saw, serve_robust
from tests.robustness.conversation import read_final
from tests.server.asgi_json import decode
from tests.server.conftest import Harness, new_rid
from tests.server.rawhttp import RawConn

Check = Callable[[dict[str, Any], bytes], None]


@dataclass
class Case:
    id: str
    wire: bytes  # "RID" is replaced by a fresh request id; the target is /robust-echo?rid=RID
    outcome: str  # "serve" | "refuse" | "either"
    rfc: str
    statuses: tuple[int, ...] = (400,)
    check: Check | None = None
    closes: bool = False  # when served, the server must close after the response
    xfail: str | None = None


def expect(
    path: str = "/robust-echo",
    query: bytes | None = None,
    has: tuple[tuple[bytes, bytes], ...] = (),
    lacks: tuple[bytes, ...] = (),
    body: bytes | None = None,
    version: str | None = None,
) -> Check:
    """A check of the scope and body the app saw."""

    def check(scope: dict[str, Any], got: bytes) -> None:
        assert scope["path"] == path, scope["path"]
        if query is not None:
            assert scope["query_string"] == query, scope["query_string"]
        headers = [tuple(pair) for pair in scope["headers"]]
        for pair in has:
            assert pair in headers, f"{pair} not in {headers}"
        for name in lacks:
            assert name not in [n for n, _ in headers], f"{name!r} in {headers}"
        if body is not None:
            assert got == body, got
        if version is not None:
            assert scope["http_version"] == version

    return check


GET = b"GET /robust-echo?rid=RID HTTP/1.1\r\n"
POST = b"POST /robust-echo?rid=RID HTTP/1.1\r\n"
HOST = b"Host: example.com\r\n"
CHUNKED = b"Transfer-Encoding: chunked\r\n"

CASES = [
    # -- request line and target (RFC 9112 sections 2, 3) -------------------------------
    Case("origin-form", GET + HOST + b"\r\n", "serve", "3.2.1", check=expect(query=b"rid=RID")),
    Case(
        "absolute-form: path and query from the target",
        b"GET http://example.com/robust-echo?rid=RID HTTP/1.1\r\n" + HOST + b"\r\n",
        "serve",
        "3.2.2",
        check=expect(query=b"rid=RID"),
    ),
    Case(
        "absolute-form: the target's authority wins over Host",
        b"GET http://example.com/robust-echo?rid=RID HTTP/1.1\r\nHost: other.test\r\n\r\n",
        "either",
        "3.2.2 (the origin server MUST ignore Host and use the target's authority)",
        check=expect(has=((b"host", b"example.com"),), lacks=()),
    ),
    Case(
        "asterisk-form with OPTIONS",
        b"OPTIONS * HTTP/1.1\r\nHost: example.com\r\nX-Rid: RID\r\n\r\n",
        "serve",
        "3.2.4",
        check=expect(path="*"),
    ),
    Case(
        "asterisk-form with GET",
        b"GET * HTTP/1.1\r\nHost: example.com\r\nX-Rid: RID\r\n\r\n",
        "either",
        "3.2.4 (asterisk-form is only for OPTIONS)",
        check=expect(path="*"),
    ),
    Case(
        "authority-form with GET",
        b"GET example.com:80 HTTP/1.1\r\nHost: example.com\r\nX-Rid: RID\r\n\r\n",
        "refuse",
        "3.2.3 (authority-form is only for CONNECT)",
    ),
    Case(
        "CONNECT (not supported)",
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nX-Rid: RID\r\n\r\n",
        "refuse",
        "9110 9.3.6",
        statuses=(400, 405, 501),
    ),
    Case(
        "fragment after the query",
        b"GET /robust-echo?rid=RID#frag HTTP/1.1\r\n" + HOST + b"\r\n",
        "either",
        "3.2 (no fragment in a request-target): refuse, or drop the fragment",
        check=expect(query=b"rid=RID"),
    ),
    Case(
        "fragment in the path",
        b"GET /robust-echo#frag?rid=RID HTTP/1.1\r\n" + HOST + b"X-Rid: RID\r\n\r\n",
        "either",
        "3.2: refuse, or drop the fragment",
        check=expect(query=b""),
    ),
    Case(
        "two spaces between the parts",
        b"GET  /robust-echo?rid=RID  HTTP/1.1\r\n" + HOST + b"\r\n",
        "either",
        "3 (MAY parse on whitespace; SHOULD 400 otherwise)",
        check=expect(query=b"rid=RID"),
    ),
    Case(
        "whitespace after the version",
        b"GET /robust-echo?rid=RID HTTP/1.1 \r\n" + HOST + b"\r\n",
        "either",
        "3",
        check=expect(query=b"rid=RID"),
    ),
    Case(
        "tab between the parts",
        b"GET\t/robust-echo?rid=RID HTTP/1.1\r\n" + HOST + b"\r\n",
        "either",
        "3",
        check=expect(query=b"rid=RID"),
    ),
    Case(
        "empty line before the request line",
        b"\r\n" + GET + HOST + b"\r\n",
        "serve",
        "2.2 (SHOULD ignore at least one empty line)",
        check=expect(query=b"rid=RID"),
    ),
    Case(
        "HTTP/1.2 (higher minor version)",
        b"GET /robust-echo?rid=RID HTTP/1.2\r\n" + HOST + b"\r\n",
        "either",
        "2.3, 9110 6.2 (SHOULD be served as 1.1)",
        statuses=(400, 505),
        check=expect(version="1.1"),
    ),
    Case(
        "lowercase version",
        b"GET /robust-echo?rid=RID http/1.1\r\n" + HOST + b"\r\n",
        "refuse",
        "2.3 (HTTP-name is case-sensitive)",
        statuses=(400, 505),
    ),
    Case(
        "lowercase method",
        b"get /robust-echo?rid=RID HTTP/1.1\r\n" + HOST + b"\r\n",
        "refuse",
        "9110 9.1 (methods are case-sensitive; unknown method)",
        statuses=(400, 405, 501),
    ),
    Case(
        "separator in the method",
        b"GE(T /robust-echo?rid=RID HTTP/1.1\r\n" + HOST + b"\r\n",
        "refuse",
        "3.1 (method = token)",
    ),
    Case(
        "control byte in the target",
        b"GET /robust-echo?rid=RID&\x01 HTTP/1.1\r\n" + HOST + b"\r\n",
        "refuse",
        "3.2",
    ),
    Case(
        "raw UTF-8 in the target",
        b"GET /robust-echo/\xc3\xa9?rid=RID HTTP/1.1\r\n" + HOST + b"\r\n",
        "either",
        "3.2 (not a URI: SHOULD 400 or 301)",
        check=expect(path="/robust-echo/\u00e9"),
    ),
    # -- fields (RFC 9112 section 5, RFC 9110 section 5) ------------------------------------
    Case("space before the colon", GET + HOST + b"X-Bad : v\r\n\r\n", "refuse", "5.1 (MUST 400)"),
    Case("tab before the colon", GET + HOST + b"X-Bad\t: v\r\n\r\n", "refuse", "5.1 (MUST 400)"),
    Case(
        "space before the colon of Transfer-Encoding",
        POST + HOST + b"Transfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc",
        "refuse",
        "5.1",
    ),
    Case(
        "obs-fold",
        GET + HOST + b"X-Fold: a\r\n b\r\n\r\n",
        "either",
        "5.2 (MUST 400, or replace with SP)",
        check=expect(has=((b"x-fold", b"a b"),)),
    ),
    Case(
        "whitespace-preceded first field line",
        GET + b" X-Skip: 1\r\n" + HOST + b"\r\n",
        "either",
        "2.2 (MUST reject, or ignore the line)",
        check=expect(lacks=(b"x-skip", b" x-skip")),
    ),
    Case(
        "whitespace-preceded Transfer-Encoding line with Content-Length",
        POST + b" Transfer-Encoding: chunked\r\n" + HOST + b"Content-Length: 3\r\n\r\nabc",
        "either",
        "2.2: if ignored, Content-Length frames the body",
        check=expect(body=b"abc"),
    ),
    Case(
        "bare CR in a value",
        GET + HOST + b"X-A: a\rb\r\n\r\n",
        "either",
        "2.2, 9110 5.5 (MUST reject, or replace with SP)",
        check=expect(has=((b"x-a", b"a b"),)),
    ),
    Case(
        "NUL in a value",
        GET + HOST + b"X-A: a\x00b\r\n\r\n",
        "either",
        "9110 5.5 (MUST reject, or replace with SP)",
        check=expect(has=((b"x-a", b"a b"),)),
    ),
    Case("NUL in a name", GET + HOST + b"X-\x00A: v\r\n\r\n", "refuse", "5.1 (field-name = token)"),
    Case(
        "DEL in a value",
        GET + HOST + b"X-A: a\x7fb\r\n\r\n",
        "either",
        "9110 5.5 (invalid; MAY be retained)",
        check=expect(has=((b"x-a", b"a\x7fb"),)),
    ),
    Case(
        "obs-text in a value",
        GET + HOST + b"X-A: caf\xe9\r\n\r\n",
        "serve",
        "9110 5.5 (obs-text)",
        check=expect(has=((b"x-a", b"caf\xe9"),)),
    ),
    Case(
        "empty value",
        GET + HOST + b"X-Empty:\r\n\r\n",
        "serve",
        "9110 5.5",
        check=expect(has=((b"x-empty", b""),)),
    ),
    Case("empty name", GET + HOST + b": v\r\n\r\n", "refuse", "5.1"),
    Case(
        "bare LF line ends",
        b"GET /robust-echo?rid=RID HTTP/1.1\nHost: example.com\n\n",
        "either",
        "2.2 (MAY accept a bare LF)",
        check=expect(query=b"rid=RID"),
    ),
    # -- Host (RFC 9112 section 3.2) --------------------------------------------------------
    Case(
        "HTTP/1.1 without Host",
        GET + b"X-Rid: RID\r\n\r\n",
        "refuse",
        "3.2 (MUST 400)",
    ),
    Case(
        "two Host fields",
        GET + HOST + b"Host: other.test\r\n\r\n",
        "refuse",
        "3.2 (MUST 400)",
    ),
    Case(
        "Host with a space",
        GET + b"Host: exa mple.com\r\n\r\n",
        "refuse",
        "3.2 (invalid value: MUST 400)",
    ),
    Case(
        "Host with userinfo",
        GET + b"Host: user@example.com\r\n\r\n",
        "refuse",
        "3.2, 9110 4.2.4 (MUST 400)",
    ),
    Case(
        "empty Host",
        GET + b"Host:\r\n\r\n",
        "serve",
        "3.2 (empty when the URI has no authority)",
        check=expect(has=((b"host", b""),)),
    ),
    Case(
        "HTTP/1.0 without Host",
        b"GET /robust-echo?rid=RID HTTP/1.0\r\n\r\n",
        "serve",
        "3.2 (1.1 only)",
        check=expect(version="1.0"),
        closes=True,
    ),
    # -- message body framing (RFC 9112 section 6) ------------------------------------------
    Case(
        "Content-Length with Transfer-Encoding",
        POST + HOST + b"Content-Length: 3\r\n" + CHUNKED + b"\r\n3\r\nabc\r\n0\r\n\r\n",
        "either",
        "6.3 (reject, or use chunked and close)",
        check=expect(body=b"abc"),
        closes=True,
    ),
    Case(
        "Transfer-Encoding with Content-Length",
        POST + HOST + CHUNKED + b"Content-Length: 30\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "either",
        "6.3",
        check=expect(body=b"abc"),
        closes=True,
    ),
    Case(
        "differing Content-Length fields",
        POST + HOST + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "refuse",
        "6.3 (unrecoverable error)",
    ),
    Case(
        "repeated identical Content-Length",
        POST + HOST + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        "either",
        "9110 8.6 (reject, or use the value once)",
        check=expect(body=b"abc"),
    ),
    Case(
        "Content-Length list of one value",
        POST + HOST + b"Content-Length: 3, 3\r\n\r\nabc",
        "either",
        "6.3 item 5",
        check=expect(body=b"abc"),
    ),
    Case("Content-Length with a sign", POST + HOST + b"Content-Length: +3\r\n\r\nabc", "refuse", "9110 8.6"),
    Case("Content-Length not a number", POST + HOST + b"Content-Length: 3a\r\n\r\nabc", "refuse", "9110 8.6"),
    Case("empty Content-Length", POST + HOST + b"Content-Length:\r\n\r\n", "refuse", "9110 8.6"),
    Case(
        "Content-Length overflowing 64 bits",
        POST + HOST + b"Content-Length: 99999999999999999999999\r\n\r\n",
        "refuse",
        "6.3",
        statuses=(400, 413),
    ),
    Case(
        "Content-Length with leading zeros",
        POST + HOST + b"Content-Length: 003\r\n\r\nabc",
        "serve",
        "9110 8.6 (1*DIGIT)",
        check=expect(body=b"abc"),
    ),
    Case(
        "chunked, then another coding",
        POST + HOST + b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
        "refuse",
        "6.3 item 4 (chunked not final: MUST 400)",
    ),
    Case(
        "only an unknown coding",
        POST + HOST + b"Transfer-Encoding: gzip\r\n\r\nabc",
        "refuse",
        "6.1 (SHOULD 501) and 6.3 item 4 (MUST 400)",
        statuses=(400, 501),
    ),
    Case(
        "unknown coding before chunked",
        POST + HOST + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "refuse",
        "6.1 (SHOULD 501)",
        statuses=(400, 501),
    ),
    Case(
        "codings over two fields",
        POST + HOST + b"Transfer-Encoding: gzip\r\n" + CHUNKED + b"\r\n0\r\n\r\n",
        "refuse",
        "6.1",
        statuses=(400, 501),
    ),
    Case(
        "chunked twice",
        POST + HOST + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
        "refuse",
        "6.1 (MUST NOT apply chunked twice)",
        statuses=(400, 501),
    ),
    Case(
        "unknown coding that looks like chunked",
        POST + HOST + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
        "refuse",
        "6.1",
        statuses=(400, 501),
    ),
    Case(
        "chunked in another case",
        POST + HOST + b"Transfer-Encoding: ChUnKeD\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "serve",
        "7 (coding names are case-insensitive)",
        check=expect(body=b"abc"),
    ),
    Case(
        "chunked after a tab",
        POST + HOST + b"Transfer-Encoding:\tchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "serve",
        "5.1 (OWS)",
        check=expect(body=b"abc"),
    ),
    Case(
        "Transfer-Encoding in HTTP/1.0",
        b"POST /robust-echo?rid=RID HTTP/1.0\r\n" + CHUNKED + b"\r\n3\r\nabc\r\n0\r\n\r\n",
        "either",
        "6.1 (faulty framing; close after)",
        check=expect(body=b"abc"),
        closes=True,
    ),
    # -- chunked coding (RFC 9112 section 7.1) ----------------------------------------------
    Case(
        "chunk extensions",
        POST + HOST + CHUNKED + b'\r\n3;a\r\nabc\r\n2;b=c;d="e f"\r\nde\r\n0;z\r\n\r\n',
        "serve",
        "7.1.1 (ignore unknown extensions)",
        check=expect(body=b"abcde"),
    ),
    Case(
        "BWS before a chunk extension",
        POST + HOST + CHUNKED + b"\r\n3 ;a\r\nabc\r\n0\r\n\r\n",
        "serve",
        "7.1.1, 9110 5.6.3 (a recipient MUST parse and remove BWS)",
        check=expect(body=b"abc"),
    ),
    Case(
        "space inside a chunk size",
        POST + HOST + CHUNKED + b"\r\n3 4\r\nabc\r\n0\r\n\r\n",
        "refuse",
        "7.1 (BWS only before an extension: '3 4' is no size)",
    ),
    Case(
        "junk after a chunk size and BWS",
        POST + HOST + CHUNKED + b"\r\n3 x\r\nabc\r\n0\r\n\r\n",
        "refuse",
        "7.1",
    ),
    Case(
        "hex size in capitals with leading zeros",
        POST + HOST + CHUNKED + b"\r\n00A\r\n0123456789\r\n0\r\n\r\n",
        "serve",
        "7.1",
        check=expect(body=b"0123456789"),
    ),
    Case(
        "trailer fields",
        POST + HOST + CHUNKED + b"\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n",
        "serve",
        "7.1.2",
        check=expect(body=b"abc", lacks=(b"x-sum",)),
    ),
    Case(
        "trailer with space before the colon",
        POST + HOST + CHUNKED + b"\r\n3\r\nabc\r\n0\r\nX-T : 1\r\n\r\n",
        "refuse",
        "7.1.2, 5.1",
    ),
    Case("chunk size 0x-prefixed", POST + HOST + CHUNKED + b"\r\n0x3\r\nabc\r\n0\r\n\r\n", "refuse", "7.1"),
    Case("chunk size with a sign", POST + HOST + CHUNKED + b"\r\n+3\r\nabc\r\n0\r\n\r\n", "refuse", "7.1"),
    Case(
        "chunk size overflowing 64 bits",
        POST + HOST + CHUNKED + b"\r\n10000000000000003\r\nabc\r\n0\r\n\r\n",
        "refuse",
        "7.1",
    ),
    Case(
        "chunk size then space",
        POST + HOST + CHUNKED + b"\r\n3 \r\nabc\r\n0 \r\n\r\n",
        "either",
        "7.1 (no BWS in the grammar there; read as the size, as h11 and Go's net/http do:"
        " no framing disagreement, unlike '3 4')",
        check=expect(body=b"abc"),
    ),
    Case(
        "chunk data longer than its size",
        POST + HOST + CHUNKED + b"\r\n3\r\nabcd\r\n0\r\n\r\n",
        "refuse",
        "7.1",
    ),
    Case("bare LF after a chunk size", POST + HOST + CHUNKED + b"\r\n3\nabc\r\n0\r\n\r\n", "refuse", "7.1"),
    Case("bare LF after chunk data", POST + HOST + CHUNKED + b"\r\n3\r\nabc\n0\r\n\r\n", "refuse", "7.1"),
    Case(
        "control byte in a chunk extension",
        POST + HOST + CHUNKED + b"\r\n3;a\x01\r\nabc\r\n0\r\n\r\n",
        "refuse",
        "7.1.1",
    ),
]


@pytest.fixture(scope="module")
def table_server() -> Iterator[Harness]:
    # Parsing is the same under every loop, so the table runs once, under the default one.
    with serve_robust("--lifespan", "on") as harness:
        yield harness


def _params() -> list[Any]:
    out = []
    for case in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
        out.append(pytest.param(case, id=case.id, marks=marks))
    return out


def refused_and_closed(conn: RawConn, statuses: tuple[int, ...], status: int, text: bytes) -> None:
    assert status in statuses, f"want one of {statuses}, got {status} {text[:200]!r}"
    assert conn.closed_by_server() == b"", "the connection must be closed after a refusal"


@pytest.mark.parametrize("case", _params())
def test_rfc9112_case(table_server: Harness, case: Case) -> None:
    rid = new_rid("t")
    conn = table_server.raw()
    conn.send(case.wire.replace(b"RID", rid.encode()))
    response = read_final(conn, "GET")
    served = response.status == 200
    if case.outcome == "refuse" or (case.outcome == "either" and not served):
        refused_and_closed(conn, case.statuses, response.status, response.body)
        assert not app_saw(table_server, [rid])[rid]["whole_body"], "a refused request reached the app"
        return
    assert served, f"want 200, got {response.status} {response.body[:200]!r}"
    payload = response.json()
    # "*" is no /robust-echo path: the recorder's default handler answers the bare scope
    scope = decode(payload.get("scope", payload))
    body = payload.get("body", "").encode("latin-1")
    if case.check is not None:
        case.check(_with_rid(scope, rid), body)
    if case.closes:
        assert conn.closed_by_server() == b"", "the server must close after this response"


def _with_rid(scope: dict[str, Any], rid: str) -> dict[str, Any]:
    """The scope with this run's rid put back to "RID", so rows can spell expected values."""
    scope = dict(scope)
    scope["query_string"] = scope["query_string"].replace(rid.encode(), b"RID")
    scope["headers"] = [[n, v.replace(rid.encode(), b"RID")] for n, v in scope["headers"]]
    return scope


# -- pipelining: responses in order, nothing processed after "close" or after an error -----


def _req(rid: str, extra: bytes = b"") -> bytes:
    return b"GET /robust-echo?rid=%s HTTP/1.1\r\nHost: example.com\r\n%s\r\n" % (rid.encode(), extra)


def _rid_of(response: Any) -> str:
    return str(decode(response.json()["scope"])["query_string"].decode().split("rid=", 1)[1])


def test_pipelined_requests_after_close_are_never_processed(table_server: Harness) -> None:
    """RFC 9112 9.6: answer the request carrying "close", then close; process nothing after it."""
    first, after = new_rid("pc"), new_rid("pc")
    conn = table_server.raw()
    conn.send(_req(first, b"Connection: close\r\n") + _req(after))
    response = read_final(conn, "GET")
    assert response.status == 200 and _rid_of(response) == first
    leftover = conn.closed_by_server()
    # An error answer to the bytes that follow is tolerated; a response to them is not.
    assert leftover == b"" or leftover.startswith(b"HTTP/1.1 400 "), leftover
    assert not app_saw(table_server, [after])[after]["seen"]


def test_close_request_pipelined_behind_another_is_answered(table_server: Harness) -> None:
    first, closing, after = new_rid("pc"), new_rid("pc"), new_rid("pc")
    conn = table_server.raw()
    conn.send(_req(first) + _req(closing, b"Connection: close\r\n") + _req(after))
    assert _rid_of(read_final(conn, "GET")) == first
    response = read_final(conn, "GET")
    assert response.status == 200, response.body
    assert _rid_of(response) == closing
    conn.closed_by_server()
    assert not app_saw(table_server, [after])[after]["seen"]


def test_valid_requests_queued_before_an_invalid_one_are_answered(table_server: Harness) -> None:
    """RFC 9112 9.3.2: responses in request order; the 400 belongs to the bad request only."""
    first, second, bad = new_rid("pe"), new_rid("pe"), new_rid("pe")
    conn = table_server.raw()
    conn.send(_req(first) + _req(second) + _req(bad, b"X-Bad : v\r\n"))
    assert _rid_of(read_final(conn, "GET")) == first
    response = read_final(conn, "GET")
    assert response.status == 200, f"the valid request got {response.status} {response.body!r}"
    assert _rid_of(response) == second
    assert read_final(conn, "GET").status == 400
    assert conn.closed_by_server() == b""


def test_invalid_request_between_valid_ones(table_server: Harness) -> None:
    first, bad, after = new_rid("pi"), new_rid("pi"), new_rid("pi")
    conn = table_server.raw()
    conn.send(_req(first) + _req(bad, b"X-Bad : v\r\n") + _req(after))
    assert _rid_of(read_final(conn, "GET")) == first
    assert read_final(conn, "GET").status == 400
    assert conn.closed_by_server() == b""
    seen = app_saw(table_server, [bad, after])
    assert not seen[bad]["seen"] and not seen[after]["seen"], seen
