"""Faults inside one HTTP/2 stream: the app raising at every step, the client leaving at every step.

The HTTP/2 half of test_faults.py (read that first), over h2c by prior knowledge with the
raw h2 client of tests/server/h2client.py. A stream's fault must have its own outcome
(a 500 before the response started, RST_STREAM INTERNAL_ERROR after; the app sees
http.disconnect, and send() raises the server's OSError, when the client leaves) and no
other: a witness stream on the same connection and one on another connection complete,
the connection goes on serving new streams, and the server's task and fd counts come
back to where they were.

Where the app runs matters to the server: a stream that is its connection's first app
call is stepped by the connection's runner (eagerly, then in the runner's worker task once
it awaits); a stream opened while another is in flight gets a task of its own. The
"first" variants send the faulty stream ahead of the witness in one write; the "beside"
variants open it while the witness is in flight.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Iterator

import h2.events
import pytest

from tests.robustness.conftest import ROBUST_APP, serve_robust, stats
from tests.server.conftest import LOOPS, new_rid
from tests.server.h2client import H2Client, literal_block, raw_frame
from tests.server.h2fixtures import H2Harness

HEADERS, RST_STREAM, GOAWAY = 0x1, 0x3, 0x7
NO_ERROR, INTERNAL_ERROR, CANCEL = 0x0, 0x2, 0x8

BEFORE_RESPONSE = ("call", "receive", "body", "start")
STEPS = (*BEFORE_RESPONSE, "chunk", "final")
LOGGED = {"error": "RuntimeError", "exit": "AppExit"}
RAISED = {"error": "RuntimeError", "exit": "AppExit", "cancel": "CancelledError"}


@contextlib.contextmanager
def serve_robust_h2(loop: str, target: str = ROBUST_APP) -> Iterator[H2Harness]:
    """A robust_app server (or `target`) on `loop`, with raw HTTP/2 clients."""
    with serve_robust("--loop", loop, "--lifespan", "on", target=target) as harness:
        server = H2Harness(harness)
        try:
            yield server
        finally:
            server.close_clients()
            server.close()


@pytest.fixture(scope="module", params=LOOPS)
def srv(request: pytest.FixtureRequest) -> Iterator[H2Harness]:
    """One robust_app server per module and event loop, with raw HTTP/2 clients."""
    with serve_robust_h2(request.param) as server:
        yield server


def settle(srv: H2Harness, base: dict[str, int]) -> None:
    """Close the test's clients; the server's tasks and fds must come back down to `base`."""
    srv.close_clients()
    assert srv.process.proc.poll() is None, "the server died"
    stats(srv, until_tasks=base["tasks"], until_fds=base["fds"], timeout=20)


# -- streams ------------------------------------------------------------------------------


def open_stream(
    client: H2Client,
    method: str,
    path: str,
    headers: list[tuple[str, str]] | None = None,
    body: bytes | None = None,
    end: bool = True,
    flush: bool = True,
) -> int:
    """Open a stream; with `flush=False` its frames wait for the next write (a batch)."""
    sid = client.conn.get_next_available_stream_id()
    fields = [(":method", method), (":path", path), (":scheme", "http"),
              (":authority", f"{client.host}:{client.port}"), *(headers or [])]
    client.conn.send_headers(sid, fields, end_stream=end and body is None)
    if body is not None:
        client.conn.send_data(sid, body, end_stream=end)
    if flush:
        client.flush()
    return sid


def data_of(client: H2Client, sid: int) -> bytes:
    return b"".join(e.data for e in client.stream_events(sid) if isinstance(e, h2.events.DataReceived))


def headers_in(client: H2Client, sid: int) -> bool:
    return any(isinstance(e, h2.events.ResponseReceived) for e in client.stream_events(sid))


class StreamWitness:
    """A request in flight on one HTTP/2 stream while something else goes wrong."""

    def __init__(self, client: H2Client, flush: bool = True) -> None:
        self.client = client
        self.sid = open_stream(client, "POST", "/slow-echo", [("x-rid", new_rid("witness"))],
                               body=b"before", end=False, flush=flush)
        if flush:
            self.confirm()

    def confirm(self) -> None:
        """Wait until the app echoed the first part: the witness is in flight."""
        client, sid = self.client, self.sid
        client.read_until(lambda: data_of(client, sid) == b"before" or client.stream_ended(sid))
        assert data_of(client, sid) == b"before", client.stream_events(sid)

    def finish(self) -> None:
        self.client.send_body(self.sid, b"after", end=True)
        response = self.client.response(self.sid)
        assert (response.status, response.body, response.reset) == (200, b"beforeafter", None), (
            "the witness stream was lost"
        )


def goes_on(client: H2Client) -> None:
    """The connection still serves new streams."""
    response = client.get(f"/echo?rid={new_rid('after')}")
    assert (response.status, response.reset) == (200, None)


# -- the app raising ----------------------------------------------------------------------


def check_outcome(client: H2Client, sid: int, step: str) -> None:
    response = client.response(sid)
    if step in BEFORE_RESPONSE:
        assert (response.status, response.body, response.reset) == (500, b"Internal Server Error\n", None)
    elif step == "chunk":
        assert (response.status, response.body) == (200, b"first-chunk;")
        assert response.reset == INTERNAL_ERROR, "a response cut off must be reset, not ended"
    else:
        assert (response.status, response.body, response.reset) == (200, b"first-chunk;last-chunk", None)


def raise_at(srv: H2Harness, step: str, exc: str, sync: bool, where: str) -> None:
    base = stats(srv)
    other = StreamWitness(srv.h2())
    client = srv.h2()
    rid = new_rid("raise")
    mark = srv.log_mark()
    path = f"/fault?step={step}&exc={exc}&sync={int(sync)}&rid={rid}"
    if where == "first":
        sid = open_stream(client, "POST", path, body=b"some body", flush=False)
        same = StreamWitness(client, flush=False)
        client.flush()
        check_outcome(client, sid, step)
        same.confirm()
    else:
        same = StreamWitness(client)
        sid = open_stream(client, "POST", path, body=b"some body")
        check_outcome(client, sid, step)
    assert srv.wait(rid, "finished")["outcome"].startswith(f"raised {RAISED[exc]}")
    if exc in LOGGED:
        log = srv.wait_for_log(f"{LOGGED[exc]}: fault-{rid}", mark)
        assert log.count(f"{LOGGED[exc]}: fault-{rid}") == 1, "the traceback must be logged once"
    same.finish()
    other.finish()
    goes_on(client)
    settle(srv, base)


@pytest.mark.parametrize("where", ["first", "beside"])
@pytest.mark.parametrize("sync", [False, True], ids=["after-await", "eager"])
@pytest.mark.parametrize("step", STEPS)
def test_app_raising_at_each_step(srv: H2Harness, step: str, sync: bool, where: str) -> None:
    raise_at(srv, step, "error", sync, where)


@pytest.mark.parametrize("where", ["first", "beside"])
@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("exc", ["cancel", "exit"])
def test_app_raising_cancelled_error_or_system_exit(srv: H2Harness, exc: str, step: str, where: str) -> None:
    """Any exception out of the app ends its stream only: CancelledError and SystemExit too."""
    raise_at(srv, step, exc, False, where)


# -- the client leaving -------------------------------------------------------------------

STREAMED_CHUNKS = 2000  # 125 MiB: far more than the windows and socket buffers hold


class Leaver:
    """A stream brought to one state the client then leaves it in, and what the app must see."""

    def __init__(self, client: H2Client, state: str) -> None:
        self.client = client
        self.state = state
        self.rid = new_rid(f"gone-{state}")
        self.sid = 0

    def start(self, srv: H2Harness) -> None:
        client, rid = self.client, self.rid
        if self.state == "mid-body":
            self.sid = open_stream(client, "POST", f"/late-answer?rid={rid}", [("content-length", "1000")],
                                   body=b"x" * 10, end=False)
            srv.wait(rid, "events:1")  # the app has the first piece and waits for more
        elif self.state == "app-working":
            self.sid = open_stream(client, "POST", f"/late-answer?rid={rid}", body=b"all of it")
            srv.wait(rid, "events:1")  # the whole body: the app blocks in receive()
        elif self.state == "mid-response":
            path = f"/stream?chunks={STREAMED_CHUNKS}&size=65536&rid={rid}"
            self.sid = open_stream(client, "GET", path)
            client.read_until(lambda: headers_in(client, self.sid) and bool(data_of(client, self.sid)))
        else:  # after-response
            self.sid = open_stream(client, "POST", f"/echo?rid={rid}", body=b"fine")
            assert client.response(self.sid).body == b"fine"

    def check(self, srv: H2Harness) -> None:
        record = srv.wait(self.rid, "finished", timeout=30)
        kinds = [e["type"] for e in record["events"]]
        if self.state in ("mid-body", "app-working"):
            assert kinds == ["http.request", "http.disconnect"], record["events"]
            assert record["events"][0]["more_body"] is (self.state == "mid-body")
        if self.state == "after-response":
            assert record["outcome"] == "returned" and record["send_error"] is None
            return
        error = record["send_error"]
        assert error is not None and error["oserror"], f"send() after the client left: {error}"
        assert error["type"] == "ClientDisconnected"
        if self.state == "mid-response":
            assert record["sends"] < STREAMED_CHUNKS


LEAVE_STATES = ("mid-body", "app-working", "mid-response", "after-response")


@pytest.mark.parametrize("state", LEAVE_STATES)
def test_client_resets_one_stream(srv: H2Harness, state: str) -> None:
    """RST_STREAM (CANCEL) from the client ends that stream only."""
    base = stats(srv)
    client = srv.h2()
    same = StreamWitness(client)
    leaver = Leaver(client, state)
    leaver.start(srv)
    # raw: h2 refuses to reset a stream it saw end, and a late RST_STREAM must be harmless
    client.send_raw(raw_frame(RST_STREAM, 0, leaver.sid, struct.pack(">L", CANCEL)))
    leaver.check(srv)
    same.finish()
    goes_on(client)
    settle(srv, base)


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_connection_closes_with_streams_in_every_state(srv: H2Harness, how: str) -> None:
    """The socket closing (FIN, or an abortive RST) ends every stream on it at once."""
    base = stats(srv)
    other = StreamWitness(srv.h2())
    client = srv.h2()
    leavers = [Leaver(client, state) for state in LEAVE_STATES for _ in range(2)]
    for leaver in leavers:
        leaver.start(srv)
    # and a header block left unfinished (HEADERS without END_HEADERS): its request never runs
    half = new_rid("gone-headers")
    block = literal_block([(":method", "GET"), (":path", f"/echo?rid={half}"), (":scheme", "http"),
                           (":authority", "x")])
    client.send_raw(raw_frame(HEADERS, 0, client.conn.get_next_available_stream_id(), block))
    if how == "rst":
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()
    for leaver in leavers:
        leaver.check(srv)
    other.finish()
    settle(srv, base)
    assert srv.info(half)["scope"] is None, "a request whose header block never ended was run"


def test_client_goaway_lets_open_streams_finish(srv: H2Harness) -> None:
    """A client's GOAWAY (NO_ERROR): streams in flight complete, then the server closes."""
    base = stats(srv)
    client = srv.h2()
    same = StreamWitness(client)
    rid = new_rid("goaway")
    sid = open_stream(client, "POST", f"/echo?rid={rid}", [("content-length", "10")],
                      body=b"x" * 4, end=False)
    srv.wait(rid, "events:1")
    # raw: after h2's own close_connection() it would send nothing more on the streams
    client.send_raw(raw_frame(GOAWAY, 0, 0, struct.pack(">LL", 0, NO_ERROR)))
    client.barrier()  # the server has read the GOAWAY
    client.send_body(sid, b"y" * 6)
    response = client.response(sid)
    assert (response.status, response.body, response.reset) == (200, b"xxxxyyyyyy", None)
    same.finish()
    client.read_until_closed()  # fails unless the server closes after the last stream
    assert client.closed
    settle(srv, base)


@pytest.mark.parametrize("how", ["client-resets", "app-raises", "app-answers"])
def test_streams_ended_with_their_body_unread_give_the_window_back(srv: H2Harness, how: str) -> None:
    """Request body nobody read must not keep the connection's receive window shut.

    Six streams each end (another way each test) with 200 KB the app never took, more
    than the 1 MiB connection window in all; then a 1.5 MB upload on the same connection
    must get through.
    """
    base = stats(srv)
    client = srv.h2()
    client.wait_settings()  # the server's windows: 256 KiB a stream, 1 MiB the connection
    then = "raise" if how == "app-raises" else "answer"
    for _ in range(6):
        rid = new_rid("unread")
        sid = open_stream(client, "POST", f"/unread?then={then}&rid={rid}", body=b"u", end=False)
        srv.wait(rid, "events:1")  # the app took the first byte and reads no more
        client.send_all(sid, b"u" * 200_000, end=False)
        client.barrier()  # the server has read all of it
        if how == "client-resets":
            client.reset(sid, CANCEL)
            srv.release(rid)
        else:
            srv.release(rid)
            response = client.response(sid)
            assert response.status == (500 if how == "app-raises" else 200)
        srv.wait(rid, "finished")
    sid = open_stream(client, "POST", f"/echo?rid={new_rid('upload')}", end=False)
    body = bytes(range(256)) * 6000
    client.send_all(sid, body)
    response = client.response(sid, timeout=20)
    assert (response.status, response.body == body) == (200, True), "the connection window was not given back"
    settle(srv, base)
