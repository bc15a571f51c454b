"""A recording ASGI app for the server's black-box tests.

Plain ASGI (no dartle import), so the same app runs under dartle and under uvicorn, which
is how its fixtures were checked. Every request is recorded under a request id (header
``x-rid`` or query parameter ``rid``): a snapshot of its scope, every event ``receive()``
returned, how many body ``send()`` calls returned, and what ``send()`` raised. The app checks
the scope and the order of received events against the ASGI spec as it goes and records any
violation; tests read all of that back through the ``/ctl/...`` endpoints, on another
connection, so they synchronise on what the app saw instead of sleeping.

Endpoints (path after root_path):
  /scope/...          the request's scope as JSON
  /echo               read the whole body, answer it (``cl=0``: no content-length)
  /slow-echo          answer the head at once, then echo each body chunk as it arrives
  /late-read          wait for /ctl/release, then read the body and echo it
  /hold               receive once, wait for /ctl/release, drain the body, answer its size
  /stream             ``chunks`` x ``size`` bytes (``cl=1``: with content-length), counting sends
  /status             status ``code`` with a body the server must drop for 204/304/HEAD
  /headers            response headers with duplicates, in a fixed order
  /te                 the app supplies Transfer-Encoding (``mode=chunked|both``)
  /trailers           http.response.trailers, if advertised
  /pathsend           http.response.pathsend of ``path``, if advertised
  /raise              raise before (``when=before``) or after (``when=after``) the response started
  /after-response     answer, then call receive() once more
  /state              the request's lifespan state, then mutate it
  /after-complete     a body message after the response completed (must not be written)
  /double-start, /body-first, /extra-keys, /inject, /bad-length, /start-only
                      send-side rule checks
  /wait-disconnect    read the body, then block in receive() until the client leaves
  /ctl/info /ctl/wait /ctl/release /ctl/seen /ctl/pid /ctl/lifespan
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

STALL_SECONDS = 0.5  # a send() pending this long counts as "stalled" for /ctl/wait?until=stalled
WAIT_TIMEOUT = 20.0


def encode(obj: Any) -> Any:
    """JSON-safe form of ASGI values; bytes become {"$bytes": latin-1 text}."""
    if isinstance(obj, bytes):
        return {"$bytes": obj.decode("latin-1")}
    if isinstance(obj, (list, tuple)):
        return [encode(item) for item in obj]
    if isinstance(obj, dict):
        return {str(key): encode(value) for key, value in obj.items()}
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return {"$repr": repr(obj)}


class Board:
    """Wakes every waiter whenever any record changes."""

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None

    def changed(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = None

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self._event is None:
                self._event = asyncio.Event()
            # Short slices so that time-based predicates ("stalled") are re-evaluated too.
            try:
                await asyncio.wait_for(self._event.wait(), min(remaining, 0.05))
            except asyncio.TimeoutError:
                pass
        return True


BOARD = Board()


class Record:
    """Everything one request did, as the app saw it."""

    def __init__(self, rid: str) -> None:
        self.rid = rid
        self.scope: Any = None
        self.events: list[dict[str, Any]] = []
        self.sends = 0
        self.send_pending_since: float | None = None
        self.send_error: dict[str, Any] | None = None
        self.finished = False
        self.outcome = ""
        self.notes: dict[str, Any] = {}
        self.violations: list[str] = []
        self.body_done = False
        self.disconnected = False
        self.released = asyncio.Event()

    def violation(self, text: str) -> None:
        self.violations.append(text)
        VIOLATIONS.append(f"{self.rid}: {text}")

    def stalled(self) -> bool:
        since = self.send_pending_since
        return self.finished or (since is not None and time.monotonic() - since >= STALL_SECONDS)

    def as_json(self) -> dict[str, Any]:
        return {
            "rid": self.rid,
            "scope": self.scope,
            "events": self.events,
            "sends": self.sends,
            "send_error": self.send_error,
            "finished": self.finished,
            "outcome": self.outcome,
            "notes": self.notes,
            "violations": self.violations,
        }


RECORDS: dict[str, Record] = {}
VIOLATIONS: list[str] = []
SEEN: list[str] = []
LIFESPAN: dict[str, Any] = {"events": [], "ran": False}
_anon = 0


def record_for(rid: str) -> Record:
    if rid not in RECORDS:
        RECORDS[rid] = Record(rid)
    return RECORDS[rid]


def scope_violations(scope: Any) -> list[str]:
    """Check an http scope against the ASGI 3.0 / HTTP 2.x spec."""
    out: list[str] = []
    if type(scope) is not dict:
        return [f"scope is {type(scope).__name__}, not dict"]
    out += [f"scope key {key!r} is not str" for key in scope if not isinstance(key, str)]
    if scope.get("type") != "http":
        out.append(f"type is {scope.get('type')!r}")
    asgi = scope.get("asgi")
    if not isinstance(asgi, dict) or asgi.get("version") != "3.0":
        out.append(f"asgi is {asgi!r}, want version '3.0'")
    elif "spec_version" in asgi and asgi["spec_version"] not in ("2.0", "2.1", "2.2", "2.3", "2.4", "2.5"):
        out.append(f"asgi.spec_version is {asgi['spec_version']!r}")
    if scope.get("http_version") not in ("1.0", "1.1", "2"):
        out.append(f"http_version is {scope.get('http_version')!r}")
    method = scope.get("method")
    if not isinstance(method, str) or method != method.upper():
        out.append(f"method is {method!r}")
    scheme = scope.get("scheme", "http")
    if scheme not in ("http", "https"):
        out.append(f"scheme is {scheme!r}")
    if not isinstance(scope.get("path"), str):
        out.append(f"path is {scope.get('path')!r}")
    if not isinstance(scope.get("raw_path", b""), (bytes, type(None))):
        out.append(f"raw_path is {scope.get('raw_path')!r}")
    if not isinstance(scope.get("query_string"), bytes):
        out.append(f"query_string is {scope.get('query_string')!r}")
    if not isinstance(scope.get("root_path", ""), str):
        out.append(f"root_path is {scope.get('root_path')!r}")
    headers = scope.get("headers")
    try:
        for pair in headers:  # type: ignore[union-attr]
            name, value = pair
            if not isinstance(name, bytes) or not isinstance(value, bytes):
                out.append(f"header {pair!r} is not a pair of bytes")
            elif name != name.lower():
                out.append(f"header name {name!r} is not lowercased")
    except (TypeError, ValueError) as exc:
        out.append(f"headers not an iterable of pairs: {exc}")
    client = scope.get("client")
    if client is not None and not (
        len(client) == 2 and isinstance(client[0], str) and isinstance(client[1], int)
    ):
        out.append(f"client is {client!r}")
    server = scope.get("server")
    if server is not None and not (
        len(server) == 2 and isinstance(server[0], str) and (isinstance(server[1], int) or server[1] is None)
    ):
        out.append(f"server is {server!r}")
    if "state" in scope and not isinstance(scope["state"], dict):
        out.append(f"state is {scope['state']!r}")
    extensions = scope.get("extensions")
    if extensions is not None and not (
        isinstance(extensions, dict) and all(isinstance(v, dict) for v in extensions.values())
    ):
        out.append(f"extensions is {extensions!r}")
    return out


def checked_receive(rec: Record, receive: Receive) -> Receive:
    """receive() that records every event and checks the order rules."""

    async def wrapped() -> Message:
        message = await receive()
        kind = message.get("type") if isinstance(message, dict) else None
        entry: dict[str, Any] = {"type": kind}
        if kind == "http.request":
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if not isinstance(body, bytes):
                rec.violation(f"http.request body is {type(body).__name__}")
                body = b""
            if not isinstance(more, bool):
                rec.violation(f"http.request more_body is {more!r}")
            if rec.body_done:
                rec.violation("http.request after the final body chunk")
            if rec.disconnected:
                rec.violation("http.request after http.disconnect")
            entry.update(len=len(body), more_body=bool(more))
            if len(body) <= 4096:
                entry["body"] = body.decode("latin-1")
            if not more:
                rec.body_done = True
        elif kind == "http.disconnect":
            rec.disconnected = True
        else:
            rec.violation(f"receive() returned {message!r}")
        rec.events.append(entry)
        BOARD.changed()
        return message

    return wrapped


def counted_send(rec: Record, send: Send) -> Send:
    """send() that counts returned body sends and records what it raised."""

    async def wrapped(message: Message) -> None:
        rec.send_pending_since = time.monotonic()
        try:
            await send(message)
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                rec.send_error = {
                    "type": type(exc).__name__,
                    "mro": [cls.__name__ for cls in type(exc).__mro__],
                    "oserror": isinstance(exc, OSError),
                    "message": str(exc),
                }
            raise
        finally:
            rec.send_pending_since = None
            BOARD.changed()
        if message.get("type") == "http.response.body":
            rec.sends += 1

    return wrapped


async def respond(
    send: Send, status: int, body: bytes, content_type: bytes = b"text/plain", *, length: bool = True
) -> None:
    headers = [(b"content-type", content_type)]
    if length:
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def respond_json(send: Send, obj: Any, status: int = 200) -> None:
    await respond(send, status, json.dumps(encode(obj)).encode(), b"application/json")


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError("client went away while sending the body")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def qint(query: dict[str, list[str]], name: str, default: int) -> int:
    return int(query.get(name, [default])[0])


def qstr(query: dict[str, list[str]], name: str, default: str = "") -> str:
    return query.get(name, [default])[0]


# ---------------------------------------------------------------------------- handlers
# Each handler takes (scope, receive, send, record, query).

Handler = Callable[[Scope, Receive, Send, Record, dict[str, list[str]]], Awaitable[None]]


async def h_scope(scope: Scope, receive: Receive, send: Send, rec: Record, q: Any) -> None:
    await respond_json(send, rec.scope)


async def h_echo(scope: Scope, receive: Receive, send: Send, rec: Record, q: Any) -> None:
    body = await read_body(receive)
    await respond(send, 200, body, length=qstr(q, "cl", "1") == "1")


async def h_slow_echo(scope: Scope, receive: Receive, send: Send, rec: Record, q: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body = message.get("body", b"")
        if body:
            await send({"type": "http.response.body", "body": body, "more_body": True})
        if not message.get("more_body", False):
            break
    await send({"type": "http.response.body", "body": b""})


async def h_hold(scope: Scope, receive: Receive, send: Send, rec: Record, q: Any) -> None:
    first = await receive()
    total = len(first.get("body", b""))
    more = first.get("more_body", False)
    await asyncio.wait_for(rec.released.wait(), WAIT_TIMEOUT * 3)
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        total += len(message.get("body", b""))
        more = message.get("more_body", False)
    await respond_json(send, {"bytes": total})


async def h_stream(scope: Scope, receive: Receive, send: Send, rec: Record, q: Any) -> None:
    chunks, size = qint(q, "chunks", 3), qint(q, "size", 5)
    headers = [(b"content-type", b"application/octet-stream")]
    if qstr(q, "cl") == "1":
        headers.append((b"content-length", str(chunks * size).encode()))
    await send({"type": "http.response.start", "status": qint(q, "status", 200), "headers": headers})
    piece = b"x" * size
    for index in range(chunks):
        await send({"type": "http.response.body", "body": piece, "more_body": index < chunks - 1})


async def h_status(scope: Scope, receive: Receive, send: Send, rec: Record, q: Any) -> None:
    await send({"type": "http.response.start", "status": qint(q, "code", 204), "headers": []})
    await send({"type": "http.response.body", "body": b"must-not-appear"})


async def h_headers(scope: Scope, receive: Receive, send: Send, rec: Record, q: Any) -> None:
    headers = [
        (b"x-first", b"1"),
        (b"set-cookie", b"a=1; Path=/"),
        (b"x-mid", b"2"),
        (b"content-length", b"2"),
        (b"set-cookie", b"b=2; Path=/"),
        (b"x-last", b"3"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


async def h_te(scope: Scope, receive: Receive, send: Send, rec: Record, q: Any) -> None:
    headers = [(b"transfer-encoding", b"chunked")]
    if qstr(q, "mode") == "both":
        headers.append((b"content-length", b"6"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"abc", "more_body": True})
    await send({"type": "http.response.body", "body": b"def"})


async def h_trailers(scope: Scope, receive: Receive, send: Send, rec: Record, q: Any) -> None:
    if "http.response.trailers" not in (scope.get("extensions") or {}):
        await respond(send, 501, b"http.response.trailers is not advertised")
        return
    await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": True})
    await send({"type": "http.response.body", "body": b"abc", "more_body": True})
    await send({"type": "http.response.body", "body": b"def"})
    await send(
        {
            "type": "http.response.trailers",
            "headers": [(b"x-checksum", b"abcdef-ok")],
            "more_trailers": False,
        }
    )


async def h_pathsend(scope: Scope, receive: Receive, send: Send, rec: Record, q: Any) -> None:
    if "http.response.pathsend" not in (scope.get("extensions") or {}):
        await respond(send, 501, b"http.response.pathsend is not advertised")
        return
    path = qstr(q, "path")
    headers = [
        (b"content-type", b"application/octet-stream"),
        (b"content-length", str(os.path.getsize(path)).encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.pathsend", "path": path})


async def h_raise(scope: Scope, receive: Receive, send: Send, rec: Record, q: Any) -> None:
    if qstr(q, "when") == "after":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
    raise RuntimeError(f"boom-{rec.rid}")


async def h_after_response(scope: Scope, receive: Receive, send: Send, rec: Record, q: Any) -> None:
    await respond(send, 200, b"done")
    # The unread (empty) body may come first; http.disconnect must follow without blocking,
    # although the client keeps the connection open.
    for _ in range(3):
        try:
            message = await asyncio.wait_for(receive(), WAIT_TIMEOUT)
        except asyncio.TimeoutError:
            rec.notes["receive_after_response"] = "timed out"
            BOARD.changed()
            return
        if message["type"] == "http.disconnect":
            return


async def h_state(scope: Scope, receive: Receive, send: Send, rec: Record, q: Any) -> None:
    state = scope.get("state")
    seen = dict(state) if isinstance(state, dict) else state
    if isinstance(state, dict):
        state["mutated_by"] = rec.rid
    await respond_json(send, {"present": "state" in scope, "state": seen})


async def h_double_start(scope: Scope, receive: Receive, send: Send, rec: Record, q: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    try:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        rec.notes["raised"] = None
    except Exception as exc:
        rec.notes["raised"] = type(exc).__name__
    await send({"type": "http.response.body", "body": b"once"})


async def h_body_first(scope: Scope, receive: Receive, send: Send, rec: Record, q: Any) -> None:
    try:
        await send({"type": "http.response.body", "body": b"too early"})
        rec.notes["raised"] = None
    except Exception as exc:
        rec.notes["raised"] = type(exc).__name__


async def h_extra_keys(scope: Scope, receive: Receive, send: Send, rec: Record, q: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [], "x_future_key": [1, "a"]})
    await send({"type": "http.response.body", "body": b"fine", "x_future_key": None})


async def h_bad_length(scope: Scope, receive: Receive, send: Send, rec: Record, q: Any) -> None:
    declared, actual = qint(q, "declared", 10), qint(q, "sent", 5)
    headers = [(b"content-length", str(declared).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"b" * actual})


async def h_inject(scope: Scope, receive: Receive, send: Send, rec: Record, q: Any) -> None:
    # A server that holds the head until the first body may raise from that send instead.
    try:
        headers = [(b"x-ok", b"a\r\nx-injected: yes")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"accepted"})
        rec.notes["raised"] = None
    except Exception as exc:
        rec.notes["raised"] = type(exc).__name__
        raise


async def h_start_only(scope: Scope, receive: Receive, send: Send, rec: Record, q: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})


async def h_wait_disconnect(scope: Scope, receive: Receive, send: Send, rec: Record, q: Any) -> None:
    await read_body(receive)
    rec.notes["second-receive"] = True
    BOARD.changed()
    await receive()  # must block until the client goes away


async def h_late_read(scope: Scope, receive: Receive, send: Send, rec: Record, q: Any) -> None:
    await asyncio.wait_for(rec.released.wait(), WAIT_TIMEOUT * 3)
    await respond(send, 200, await read_body(receive))


async def h_after_complete(scope: Scope, receive: Receive, send: Send, rec: Record, q: Any) -> None:
    await respond(send, 200, b"complete")
    try:
        await send({"type": "http.response.body", "body": b"stray bytes"})
        rec.notes["raised"] = None
    except Exception as exc:
        rec.notes["raised"] = type(exc).__name__


HANDLERS: dict[str, Handler] = {
    "/after-complete": h_after_complete,
    "/late-read": h_late_read,
    "/bad-length": h_bad_length,
    "/inject": h_inject,
    "/start-only": h_start_only,
    "/wait-disconnect": h_wait_disconnect,
    "/scope": h_scope,
    "/echo": h_echo,
    "/slow-echo": h_slow_echo,
    "/hold": h_hold,
    "/stream": h_stream,
    "/status": h_status,
    "/headers": h_headers,
    "/te": h_te,
    "/trailers": h_trailers,
    "/pathsend": h_pathsend,
    "/raise": h_raise,
    "/after-response": h_after_response,
    "/state": h_state,
    "/double-start": h_double_start,
    "/body-first": h_body_first,
    "/extra-keys": h_extra_keys,
}


# ---------------------------------------------------------------------------- control


async def control(name: str, scope: Scope, receive: Receive, send: Send, q: Any) -> None:
    rid = qstr(q, "rid")
    if name == "info":
        await respond_json(send, record_for(rid).as_json())
    elif name == "wait":
        rec = record_for(rid)
        until = qstr(q, "until")
        kind, _, arg = until.partition(":")
        predicates: dict[str, Callable[[], bool]] = {
            "events": lambda: len(rec.events) >= int(arg),
            "disconnect": lambda: rec.disconnected,
            "sends": lambda: rec.sends >= int(arg),
            "stalled": rec.stalled,
            "finished": lambda: rec.finished,
            "send-error": lambda: rec.send_error is not None,
            "seen": lambda: rec.scope is not None,
            "note": lambda: arg in rec.notes,
        }
        ok = await BOARD.wait_for(predicates[kind], float(qstr(q, "timeout", str(WAIT_TIMEOUT))))
        await respond_json(send, rec.as_json(), 200 if ok else 504)
    elif name == "release":
        record_for(rid).released.set()
        await respond(send, 200, b"released")
    elif name == "seen":
        await respond_json(send, {"seen": SEEN, "violations": VIOLATIONS})
    elif name == "pid":
        await respond_json(send, {"pid": os.getpid()})
    elif name == "lifespan":
        await respond_json(send, LIFESPAN)
    else:
        await respond(send, 404, b"no such control endpoint")


async def lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    LIFESPAN["ran"] = True
    LIFESPAN["scope_has_state"] = "state" in scope
    while True:
        message = await receive()
        LIFESPAN["events"].append(message["type"])
        if message["type"] == "lifespan.startup":
            if "state" in scope:
                scope["state"]["greeting"] = "hello"
                scope["state"]["pid"] = os.getpid()
            print("recorder: startup complete", flush=True)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            print("recorder: shutdown complete", flush=True)
            sys.stdout.flush()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The recording app (ASGI 3.0)."""
    global _anon
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
        return
    if scope["type"] != "http":
        return
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    path = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    if path.startswith("/ctl/"):
        await control(path[len("/ctl/") :], scope, receive, send, query)
        return

    header_rid = next((v for k, v in scope.get("headers", []) if k == b"x-rid"), None)
    rid = header_rid.decode() if header_rid else qstr(query, "rid")
    if not rid:
        _anon += 1
        rid = f"anon-{_anon}"
    rec = record_for(rid)
    raw = scope.get("raw_path") or scope["path"].encode()
    target = raw + (b"?" + scope["query_string"] if scope.get("query_string") else b"")
    SEEN.append(f"{scope.get('method')} {target.decode('latin-1')}")
    snapshot = dict(scope)
    if isinstance(snapshot.get("state"), dict):
        snapshot["state"] = dict(snapshot["state"])
    rec.scope = encode(snapshot)
    for text in scope_violations(scope):
        rec.violation(text)
    BOARD.changed()

    handler: Handler = HANDLERS.get("/" + path.lstrip("/").split("/", 1)[0], h_scope)
    try:
        await handler(scope, checked_receive(rec, receive), counted_send(rec, send), rec, query)
        rec.outcome = "returned"
    except BaseException as exc:
        rec.outcome = f"raised {type(exc).__name__}: {exc}"
        raise
    finally:
        rec.finished = True
        BOARD.changed()
