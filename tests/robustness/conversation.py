"""Play a pipeline of `Sent` requests over one raw connection and check every outcome.

The whole pipeline goes out before anything is read, cut into separate writes at the given
points (TCP_NODELAY, so the cuts reach the server as separate segments more often than
not). Then each response is read in order and held against what RFC 9112 allows for its
request (strategies.py, mutations.py). What the app saw is checked afterwards, through the app.
"""

from __future__ import annotations

import re
import socket

from hypothesis import event

from tests.robustness.conftest import app_saw
from tests.robustness.strategies import Expected, Sent
from tests.server.asgi_json import decode
from tests.server.conftest import Harness
from tests.server.rawhttp import RawConn, Response, ServerClosed


def send_in_pieces(conn: RawConn, data: bytes, cuts: list[int]) -> None:
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for start, end in zip([0, *cuts], [*cuts, len(data)], strict=False):
        try:
            conn.send(data[start:end])
        except (BrokenPipeError, ConnectionResetError):
            return  # the server refused something already and closed: the reads will show it


def read_final(conn: RawConn, method: str) -> Response:
    """The next final response (interim 100 Continue responses are skipped)."""
    while True:
        response = conn.read_head()
        if response.status >= 200:
            return conn.read_body(response, method)
        assert response.status == 100, f"unexpected interim response {response.status}"


def headers_match(
    actual: list[list[bytes]], expected: list[tuple[bytes, Expected]], loose: frozenset[bytes]
) -> bool:
    got = [(name, value) for name, value in actual if name not in loose]
    if len(got) != len(expected):
        return False
    for (name, value), (want_name, want) in zip(got, expected, strict=True):
        if name != want_name:
            return False
        if isinstance(want, re.Pattern) and not want.fullmatch(value):
            return False
        if isinstance(want, bytes) and value != want:
            return False
    return True


def check_served(sent: Sent, response: Response) -> None:
    spec = sent.spec
    context = f"{sent.why}: {sent.wire[:400]!r}"
    assert response.status == 200, f"{context}\n-> {response.status} {response.body[:200]!r}"
    payload = response.json()
    scope = decode(payload["scope"])
    assert scope["method"] == spec.method, context
    assert scope["http_version"] == spec.version, context
    assert scope["path"] == spec.path_text, context
    assert scope["raw_path"] == spec.raw_path, context
    assert scope["query_string"] == spec.query, context
    expected = sent.expected_headers()
    assert headers_match(scope["headers"], expected, sent.loose), (
        f"{context}\nscope headers {scope['headers']}\nexpected {expected}"
    )
    assert payload["body"].encode("latin-1") == spec.body, context


def converse(harness: Harness, pipeline: list[Sent], cuts: list[int]) -> None:
    """Send `pipeline` cut at `cuts`; check each answer, then what the app never got."""
    conn = harness.raw(timeout=15)
    send_in_pieces(conn, b"".join(sent.wire for sent in pipeline), cuts)
    must_not_run: list[str] = []  # rids the app must never have seen
    must_not_finish: list[str] = []  # rids whose head the app may see, never the whole body
    for index, sent in enumerate(pipeline):
        try:
            response = read_final(conn, sent.spec.method)
        except ServerClosed as exc:
            raise AssertionError(
                f"request {index} ({sent.why}) got no answer: {exc}\nwire: {sent.wire[:400]!r}"
            ) from None
        refused = sent.verdict == "reject" or (sent.verdict == "either" and response.status != 200)
        if sent.verdict != "valid":
            event(f"{sent.verdict} {sent.why.split(':')[0][:40]} -> {response.status}")
        if refused:
            assert response.status in sent.statuses, (
                f"{sent.why}: want one of {sent.statuses}, got {response.status} "
                f"{response.body[:200]!r}\nwire: {sent.wire[:400]!r}"
            )
            assert conn.closed_by_server() == b"", f"{sent.why}: the connection stayed open"
            (must_not_finish if sent.body_level else must_not_run).append(sent.rid)
            must_not_run += [later.rid for later in pipeline[index + 1 :]]
            break
        try:
            check_served(sent, response)
        except AssertionError as exc:
            story = "\n".join(f"  {i}: {s.why}: {s.wire[:300]!r}" for i, s in enumerate(pipeline))
            raise AssertionError(f"request {index} of the pipeline:\n{story}\n{exc}") from None
        if sent.must_close_after():
            assert conn.closed_by_server() == b"", f"{sent.why}: must close after this request"
            must_not_run += [later.rid for later in pipeline[index + 1 :]]
            break
    seen = app_saw(harness, must_not_run + must_not_finish)
    ran = [rid for rid in must_not_run if seen[rid]["seen"]]
    assert not ran, f"the app ran requests it must never see: {ran}"
    finished = [rid for rid in must_not_finish if seen[rid]["whole_body"]]
    assert not finished, f"the app got the whole body of refused requests: {finished}"
