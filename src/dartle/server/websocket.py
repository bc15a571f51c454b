"""WebSocket sessions: ASGI websocket events over the websockets library's sans-I/O protocol.

A `WebSocketSession` is one WebSocket from the handshake to the close. It runs the app,
turns the app's `websocket.*` messages into a handshake answer and frames, and incoming
frames into `websocket.receive` / `websocket.disconnect` events. It does no I/O itself:
bytes come in through `data_in()` and leave through a `Carrier`, the small interface a
framing protocol implements. HTTP/1.1 (ws_h1.py, after an Upgrade) is one carrier; an
HTTP/2 stream (RFC 8441 extended CONNECT) can be another, with the same session.

The session's phases, as the app sees them::

    HANDSHAKE --accept--> OPEN --app close / peer close / error / loss--> CLOSED
        |  \\--close, or the app ends: 403 / 500 -------------------------^
        +--websocket.http.response.start--> RESPONSE --final body--------^

Flow control both ways: `send()` waits while the carrier's write buffer is above its mark,
and reading pauses while the app leaves more than a few messages unread, so a client that
floods is held to the app's pace and memory stays bounded either way.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, cast

from websockets.exceptions import InvalidState, ProtocolError
from websockets.frames import BINARY, CLOSE, CONT, PONG, TEXT, Close, Frame
from websockets.protocol import OPEN as PROTOCOL_OPEN

from dartle.asgi.types import ASGIApp, Message, Scope
from dartle.server.errors import ClientDisconnected
from dartle.server.ws_protocol import SessionProtocol

logger = logging.getLogger("dartle.error")

HANDSHAKE, RESPONSE, OPEN, CLOSED = range(4)
PHASE_NAMES = ("HANDSHAKE", "RESPONSE", "OPEN", "CLOSED")

# Reading pauses when the app leaves this much unread; it resumes once the app caught up.
INBOX_HIGH_BYTES = 1024 * 1024
INBOX_HIGH_COUNT = 64
# Bytes parsed per step while the inbox may fill: one read can hold thousands of tiny
# frames, and parsing them all at once would queue them all.
PARSE_SLICE = 16 * 1024
# Seconds the peer has to answer our close frame (and to read what is still unsent).
CLOSE_TIMEOUT = 5.0

NORMAL = 1000
GOING_AWAY = 1001
ABNORMAL = 1006
INTERNAL_ERROR = 1011

_CONNECT: dict[str, Any] = {"type": "websocket.connect"}
_utf8_decoder = codecs.getincrementaldecoder("utf-8")


class Carrier(Protocol):
    """What a session needs from the framing that carries it (an h1 connection, an h2 stream)."""

    loop: asyncio.AbstractEventLoop
    write_paused: bool

    def accept(self, subprotocol: str | None, extensions: str | None, headers: Any) -> None:
        """Complete the handshake (h1: 101 Switching Protocols) with these response headers."""

    def respond(self, status: int, headers: Any, body: bytes, more: bool) -> None:
        """Start an HTTP response instead of the WebSocket (403, 500, the denial extension)."""

    def respond_body(self, body: bytes, more: bool) -> None:
        """Go on with that HTTP response; `more=False` ends it and the connection."""

    def write(self, data: bytes) -> None:
        """Send WebSocket frame bytes."""

    def end(self) -> None:
        """No more bytes from us: close once what is written has left (h1: close the socket)."""

    def abort(self) -> None:
        """Drop the connection at once."""

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def drain(self) -> Awaitable[None]:
        """Wait until the write buffer is below its mark (or the connection is gone)."""

    def log_access(self, scope: Scope, status: int) -> None:
        """One access-log line for the handshake's outcome."""


class WebSocketSession:
    """The ASGI side of one WebSocket: `receive`, `send`, and the app's run."""

    __slots__ = (
        "accepted",
        "app",
        "carrier",
        "close_deadline",
        "close_sent",
        "connect_delivered",
        "disconnect",
        "eof_pending",
        "extensions_header",
        "fragment_text",
        "fragments",
        "inbox",
        "inbox_bytes",
        "loop",
        "lost",
        "phase",
        "ping_handle",
        "ping_interval",
        "ping_payload",
        "ping_timeout",
        "pong_handle",
        "protocol",
        "read_held",
        "response_head",
        "scope",
        "shutting_down",
        "stash",
        "task",
        "task_done",
        "text_decoder",
        "waiter",
    )

    def __init__(
        self,
        scope: Scope,
        carrier: Carrier,
        protocol: SessionProtocol,
        extensions_header: str | None,
        app: ASGIApp,
        ping_interval: float | None,
        ping_timeout: float | None,
    ) -> None:
        self.scope = scope
        self.carrier = carrier
        self.loop = carrier.loop
        self.protocol = protocol
        self.extensions_header = extensions_header
        self.app = app
        self.ping_interval = ping_interval if ping_interval else None
        self.ping_timeout = ping_timeout if ping_timeout else None
        self.phase = HANDSHAKE
        self.accepted = False  # the handshake completed: bytes in are frames
        self.close_sent = False  # our close frame is out: messages still coming are dropped
        self.connect_delivered = False
        # The event receive() returns once the connection is over for the app.
        self.disconnect: dict[str, Any] | None = None
        self.lost = False
        self.shutting_down = False
        self.inbox: deque[tuple[Message, int]] = deque()
        self.inbox_bytes = 0
        self.waiter: asyncio.Future[None] | None = None
        # Bytes received but not parsed yet: before accept, or while the inbox is full.
        self.stash = bytearray()
        self.read_held = False
        # The client's end of input came while reading was held: it follows the stash.
        self.eof_pending = False
        self.fragments: list[bytes] = []
        self.fragment_text = False
        self.text_decoder: codecs.IncrementalDecoder | None = None
        self.response_head: tuple[int, Any] | None = None
        self.ping_handle: asyncio.TimerHandle | None = None
        self.pong_handle: asyncio.TimerHandle | None = None
        self.ping_payload = b""
        self.close_deadline = 0.0
        self.task: asyncio.Task[None] | None = None
        self.task_done: Callable[[], None] | None = None

    # -- running the app ------------------------------------------------------------------

    def start(self, task_done: Callable[[], None] | None = None) -> None:
        """Call the app in a task of its own; `task_done` runs when it has ended."""
        self.task_done = task_done
        self.task = self.loop.create_task(self._run())

    async def _run(self) -> None:
        try:
            await self.app(self.scope, self.receive, self.send)
        except asyncio.CancelledError as exc:
            # Whoever raised it, the socket ends as after any failure (500 before accepting,
            # 1011 after; not logged, as for HTTP). A server that cancels the app (forced
            # shutdown) has dropped the connection already: nothing goes out then.
            self._app_ended(exc)
            if _cancel_requested(self.task):
                raise  # this task was cancelled: asyncio must see it end so
        except BaseException as exc:
            # SystemExit and KeyboardInterrupt too: out of a task they would stop the
            # event loop, and every connection with it; they end this socket only
            self._app_ended(exc)
        else:
            self._app_ended(None)

    def _app_ended(self, exc: BaseException | None) -> None:
        try:
            if exc is not None and (
                isinstance(exc, ClientDisconnected) or (isinstance(exc, OSError) and self.lost)
            ):
                exc = None
            elif exc is not None and not isinstance(exc, asyncio.CancelledError):
                logger.error("Exception in ASGI application", exc_info=exc)
            phase = self.phase
            if self.lost:
                pass  # the client is gone: there is no one to answer
            elif phase == HANDSHAKE:
                if exc is None:
                    logger.error("ASGI callable returned without accepting or closing the WebSocket")
                self._refuse(500, "Internal Server Error")
            elif phase == RESPONSE:
                logger.error("ASGI callable returned without completing the HTTP response")
                if self.response_head is not None:  # nothing written yet: still time for a 500
                    self._refuse(500, "Internal Server Error")
                else:
                    self._end(ABNORMAL, "")
                    self.carrier.abort()
            elif phase == OPEN:
                # the app is gone: close the socket it left open (1011 after a crash)
                if exc is None:
                    self._close(NORMAL, "")
                else:
                    self._close(INTERNAL_ERROR, "Internal Server Error")
        finally:
            self.app = None  # type: ignore[assignment]  # nothing to keep alive past the app
            if self.task_done is not None:
                self.task_done()

    # -- the ASGI callables ---------------------------------------------------------------

    async def receive(self) -> Message:
        if not self.connect_delivered:
            self.connect_delivered = True
            return _CONNECT.copy()
        while True:
            inbox = self.inbox
            if inbox:
                message, size = inbox.popleft()
                self.inbox_bytes -= size
                if self.read_held and not inbox:
                    self._resume()
                return message
            disconnect = self.disconnect
            if disconnect is not None:
                return disconnect.copy()
            waiter = self.waiter
            if waiter is None or waiter.done():
                waiter = self.waiter = self.loop.create_future()
            await waiter

    async def send(self, message: Message) -> None:
        mtype = message["type"]
        phase = self.phase
        if phase == OPEN and mtype == "websocket.send":
            try:
                text = message.get("text")
                if type(text) is str and message.get("bytes") is None:
                    frame = self.protocol.data_frame(True, text.encode())
                else:
                    frame = self._frame(message)
            except InvalidState:  # our close frame is out (the app's or the server's)
                raise ClientDisconnected("the WebSocket is closed") from None
            self.carrier.write(frame)
            if self.carrier.write_paused:
                await self.carrier.drain()
            return
        if phase == OPEN and mtype == "websocket.close":
            if self.close_sent:
                raise ClientDisconnected("the WebSocket is closed")
            code, reason = _close_args(message)
            self._close(code, reason)
            return
        if self.lost or (self.disconnect is not None and phase != HANDSHAKE):
            raise ClientDisconnected("the WebSocket is closed")
        if phase == HANDSHAKE:
            self._handshake_answer(message)
        elif phase == RESPONSE and mtype == "websocket.http.response.body":
            body = message.get("body", b"")
            if type(body) is not bytes:
                body = _as_bytes(body, "websocket.http.response.body 'body'")
            more = bool(message.get("more_body", False))
            self._respond(body, more)
            if more and self.carrier.write_paused:
                await self.carrier.drain()
        else:
            self._unexpected(mtype, phase)

    def _frame(self, message: Message) -> bytes:
        data = message.get("bytes")
        text = message.get("text")
        if data is not None:
            if text is not None:
                raise ValueError("websocket.send needs exactly one of 'bytes' or 'text', not both")
            if type(data) is not bytes:
                data = _as_bytes(data, "websocket.send 'bytes'")
            return self.protocol.data_frame(False, data)
        if type(text) is str:
            return self.protocol.data_frame(True, text.encode())
        raise TypeError(
            "websocket.send needs 'text' (str) or 'bytes' (bytes), "
            f"got text={type(text).__name__}, bytes=None"
        )

    def _handshake_answer(self, message: Message) -> None:
        mtype = message["type"]
        if mtype == "websocket.accept":
            self._accept(message)
        elif mtype == "websocket.close":
            _close_args(message)  # an invalid close is the app's bug even here
            self._refuse(403, "WebSocket connection refused")
        elif mtype == "websocket.http.response.start":
            status = message["status"]
            if type(status) is not int or not 100 <= status <= 599 or status == 101:
                raise ValueError(
                    "websocket.http.response.start status must be an int 100-599 "
                    f"other than 101, not {status!r}"
                )
            self.response_head = (status, message.get("headers", ()))
            self.phase = RESPONSE
        else:
            self._unexpected(mtype, HANDSHAKE)

    def _respond(self, body: bytes, more: bool) -> None:
        """A part of the denial response; the head leaves with the first part."""
        head = self.response_head
        if head is not None:
            self.response_head = None
            self.carrier.log_access(self.scope, head[0])
            self.carrier.respond(head[0], head[1], body, more)
        else:
            self.carrier.respond_body(body, more)
        if not more:
            self._end(ABNORMAL, "")

    def _unexpected(self, mtype: str, phase: int) -> None:
        expected = {
            HANDSHAKE: "websocket.accept, websocket.close or websocket.http.response.start",
            RESPONSE: "websocket.http.response.body",
            OPEN: "websocket.send or websocket.close",
            CLOSED: "nothing",
        }[phase]
        raise RuntimeError(
            f"unexpected ASGI message {mtype!r} while the WebSocket is {PHASE_NAMES[phase]}: "
            f"expected {expected}"
        )

    # -- handshake outcomes ---------------------------------------------------------------

    def _accept(self, message: Message) -> None:
        subprotocol = message.get("subprotocol")
        if subprotocol is not None and type(subprotocol) is not str:
            raise TypeError(f"websocket.accept subprotocol must be a str, not {subprotocol!r}")
        headers = message.get("headers") or ()
        for name, _ in headers:
            if type(name) is bytes and name.lower() == b"sec-websocket-protocol":
                raise ValueError(
                    "websocket.accept headers must not include sec-websocket-protocol; "
                    "use the 'subprotocol' key"
                )
        self.carrier.accept(subprotocol, self.extensions_header, headers)
        self.carrier.log_access(self.scope, 101)
        self.accepted = True
        if self.shutting_down:
            self.phase = CLOSED
            self._close(GOING_AWAY, "server shutting down")
            return
        self.phase = OPEN
        if self.ping_interval is not None:
            self.ping_handle = self.loop.call_later(self.ping_interval, self._ping)
        if self.stash or self.read_held:
            self._resume()

    def _refuse(self, status: int, message: str) -> None:
        """Answer the handshake with a plain-text HTTP error and end the connection."""
        self.carrier.log_access(self.scope, status)
        body = message.encode() + b"\n"
        headers = [(b"content-type", b"text/plain; charset=utf-8")]
        self.carrier.respond(status, headers, body, False)
        self._end(ABNORMAL, "")

    # -- bytes in -------------------------------------------------------------------------

    def data_in(self, data: bytes) -> None:
        """Bytes from the client (everything after the handshake request)."""
        if not self.accepted or self.read_held:
            if self.read_held or self.phase == HANDSHAKE:
                self.stash += data
                if len(self.stash) > PARSE_SLICE and not self.read_held:
                    self._hold()
            return  # after an HTTP response (refusal, denial) nothing more is read
        if len(data) <= PARSE_SLICE:
            # _parse, with its usual outcome first: whole data frames, all delivered
            protocol = self.protocol
            taken = protocol.take_data_frames(data, self._message_in)
            if taken != len(data) or protocol.parser_exc is not None:
                self._parse_rest(data, taken)
        else:
            self._parse_sliced(data)

    def _parse_sliced(self, data: bytes) -> None:
        view = memoryview(data)
        for start in range(0, len(data), PARSE_SLICE):
            if self.read_held:
                self.stash += view[start:]
                return
            self._parse(bytes(view[start : start + PARSE_SLICE]))

    def _parse(self, data: bytes) -> None:
        self._parse_rest(data, self.protocol.take_data_frames(data, self._message_in))

    def _parse_rest(self, data: bytes, taken: int) -> None:
        """Go on with `data` after the fast path took its first `taken` bytes."""
        protocol = self.protocol
        if taken:
            if protocol.parser_exc is not None:
                self._flush()
                if self.disconnect is None:
                    self._protocol_failed()
                return
            if taken == len(data) or self.disconnect is not None:
                return
            if self.read_held:
                self.stash += data[taken:]
                return
            data = data[taken:]
        protocol.receive_data(data)
        # a session's protocol starts OPEN: its events are frames, never HTTP messages
        for frame in cast("list[Frame]", protocol.events_received()):
            opcode = frame.opcode
            payload = frame.data
            if type(payload) is not bytes:  # unmasking and inflating give bytes already
                payload = bytes(payload)
            if opcode is TEXT or opcode is BINARY:
                if frame.fin:
                    if opcode is TEXT:
                        try:
                            text = payload.decode()
                        except UnicodeDecodeError:
                            self._fail_utf8()
                            return
                        self._deliver({"type": "websocket.receive", "text": text}, len(text))
                    else:
                        self._deliver({"type": "websocket.receive", "bytes": payload}, len(payload))
                else:
                    self.fragment_text = opcode is TEXT
                    if not self._fragment(payload, False):
                        return
            elif opcode is CONT:
                if not self._fragment(payload, frame.fin):
                    return
            elif opcode is CLOSE:
                self._peer_closed()
            elif opcode is PONG:
                self._pong(payload)
            # PING: the protocol has queued the pong already
        self._flush()
        if protocol.parser_exc is not None and self.disconnect is None:
            self._protocol_failed()

    def _message_in(self, text: bool, payload: bytes) -> bool:
        """A whole message from the fast path; False when reading should stop."""
        if text:
            try:
                value = payload.decode()
            except UnicodeDecodeError:
                self._fail_utf8()
                return False
            self._deliver({"type": "websocket.receive", "text": value}, len(value))
        else:
            self._deliver({"type": "websocket.receive", "bytes": payload}, len(payload))
        return not self.read_held

    def _fragment(self, data: bytes, fin: bool) -> bool:
        """Collect one fragment of a message; False if it failed the connection."""
        if self.fragment_text:
            # decoded as it comes, so invalid UTF-8 fails the connection at once
            decoder = self.text_decoder
            if decoder is None:
                decoder = self.text_decoder = _utf8_decoder()
            try:
                text = decoder.decode(data, fin)
            except UnicodeDecodeError:
                self.fragments = []
                self.text_decoder = None
                self._fail_utf8()
                return False
            self.fragments.append(text)  # type: ignore[arg-type]
        else:
            self.fragments.append(data)
        if fin:
            parts = self.fragments
            self.fragments = []
            if self.fragment_text:
                self.text_decoder = None
                text = "".join(parts)  # type: ignore[arg-type]
                self._deliver({"type": "websocket.receive", "text": text}, len(text))
            else:
                data = b"".join(parts)
                self._deliver({"type": "websocket.receive", "bytes": data}, len(data))
        return True

    def _deliver(self, message: Message, size: int) -> None:
        if self.close_sent:
            return  # the app has closed (or is gone): it reads no more
        inbox = self.inbox
        inbox.append((message, size))
        self.inbox_bytes += size
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)
        if (self.inbox_bytes > INBOX_HIGH_BYTES or len(inbox) > INBOX_HIGH_COUNT) and not self.read_held:
            self._hold()

    def _fail_utf8(self) -> None:
        self.protocol.fail(1007, "invalid UTF-8 in a text message")
        self._flush()
        self._protocol_failed()

    def _protocol_failed(self) -> None:
        """The protocol closed the connection on bad input (1002, 1007, 1009...)."""
        protocol = self.protocol
        sent = protocol.close_sent
        if sent is not None:
            logger.debug("closing WebSocket %s: %d %s", self.scope.get("client"), sent.code, sent.reason)
            self._end(sent.code, sent.reason)
        else:  # the peer's end of stream, without a close frame
            self._end(ABNORMAL, "")

    def _peer_closed(self) -> None:
        received = self.protocol.close_rcvd
        if received is not None:
            self._end(received.code, received.reason)

    def data_eof(self) -> None:
        """The client will send no more (TCP half-close, HTTP/2 END_STREAM)."""
        if self.accepted:
            if self.stash and not self.read_held:
                data = bytes(self.stash)
                self.stash.clear()
                self._parse_sliced(data)
            if self.read_held:
                # Messages (and maybe the close frame) wait in the stash for the app to
                # catch up: the end comes after them, once reading resumes. HTTP/2 gets
                # here, its stream's reading being paused only by withheld WINDOW_UPDATEs.
                self.eof_pending = True
                return
            self.protocol.receive_eof()
            self._flush()
        if self.disconnect is None:
            self._end(ABNORMAL, "")

    def connection_lost(self) -> None:
        """The connection is gone: the app gets its disconnect, pending sends return."""
        self.lost = True
        self._stop_keepalive()
        self.close_deadline = 0.0
        if self.disconnect is None:
            received = self.protocol.close_rcvd
            if received is not None:
                self._end(received.code, received.reason)
            else:
                self._end(ABNORMAL, "")
        self.stash.clear()

    # -- flow control ---------------------------------------------------------------------

    def _hold(self) -> None:
        self.read_held = True
        self.carrier.pause_reading()

    def _resume(self) -> None:
        self.read_held = False
        stash = self.stash
        if stash and self.accepted:
            data = bytes(stash)
            stash.clear()
            self._parse_sliced(data)
        if self.read_held:
            return
        if not self.lost:
            self.carrier.resume_reading()
        if self.eof_pending:
            self.eof_pending = False
            self.data_eof()

    # -- bytes out and closing ------------------------------------------------------------

    def _flush(self) -> None:
        writes = self.protocol.data_to_send()
        if not writes:
            return
        if writes[-1] == b"":  # the protocol is done with the connection: close it
            data = b"".join(writes)
            if data:
                self.carrier.write(data)
            self.carrier.end()
            self._arm_close_deadline()
        else:
            self.carrier.write(writes[0] if len(writes) == 1 else b"".join(writes))

    def _close(self, code: int, reason: str) -> None:
        """Start the closing handshake; the app learns the outcome from the peer's reply."""
        try:
            self.protocol.send_close(code, reason)
        except InvalidState:
            return
        self.close_sent = True
        self._flush()
        self._stop_keepalive()
        self._arm_close_deadline()
        if self.read_held:
            self._resume()  # keep reading: the peer's close frame is what we wait for

    def _end(self, code: int, reason: str) -> None:
        """The connection is over for the app: wake it with its disconnect event."""
        self.phase = CLOSED
        self._stop_keepalive()
        self._disconnect(code, reason)

    def _disconnect(self, code: int, reason: str) -> None:
        if self.disconnect is None:
            # plain int: the library gives CloseCode members, ASGI wants an int
            self.disconnect = {"type": "websocket.disconnect", "code": int(code), "reason": reason}
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _arm_close_deadline(self) -> None:
        if not self.close_deadline:
            self.close_deadline = self.loop.time() + CLOSE_TIMEOUT

    # -- keepalive pings ------------------------------------------------------------------

    def _ping(self) -> None:
        self.ping_handle = None
        if self.protocol.state is not PROTOCOL_OPEN or self.lost:
            return
        self.ping_payload = os.urandom(4)
        self.protocol.send_ping(self.ping_payload)
        self._flush()
        if self.ping_timeout is not None:
            self.pong_handle = self.loop.call_later(self.ping_timeout, self._pong_timeout)
        elif self.ping_interval is not None:
            self.ping_handle = self.loop.call_later(self.ping_interval, self._ping)

    def _pong(self, data: bytes) -> None:
        if not self.ping_payload or data != self.ping_payload:
            return  # unsolicited, or the answer to an older ping
        self.ping_payload = b""
        if self.pong_handle is not None:
            self.pong_handle.cancel()
            self.pong_handle = None
            if self.ping_interval is not None:
                self.ping_handle = self.loop.call_later(self.ping_interval, self._ping)

    def _pong_timeout(self) -> None:
        self.pong_handle = None
        if self.protocol.state is not PROTOCOL_OPEN or self.lost:
            return
        logger.info("WebSocket %s: no pong within %ss, closing", self.scope.get("client"), self.ping_timeout)
        self.protocol.fail(INTERNAL_ERROR, "keepalive ping timeout")
        self._flush()
        self._end(INTERNAL_ERROR, "keepalive ping timeout")

    def _stop_keepalive(self) -> None:
        if self.ping_handle is not None:
            self.ping_handle.cancel()
            self.ping_handle = None
        if self.pong_handle is not None:
            self.pong_handle.cancel()
            self.pong_handle = None

    # -- housekeeping ---------------------------------------------------------------------

    def overdue(self, now: float) -> bool:
        """Whether the closing handshake has taken longer than CLOSE_TIMEOUT."""
        return bool(self.close_deadline) and now >= self.close_deadline

    def shutdown(self) -> None:
        """Graceful shutdown: the app gets `websocket.disconnect` (1001), the socket a 1001 close."""
        self.shutting_down = True
        phase = self.phase
        if phase == OPEN:
            self._close(GOING_AWAY, "server shutting down")
            self._end(GOING_AWAY, "server shutting down")
        elif phase == HANDSHAKE:
            # the app still decides the handshake; an accept is then closed at once (1001)
            self._disconnect(GOING_AWAY, "server shutting down")

    def cancel(self) -> None:
        """Stop the app (forced shutdown)."""
        task = self.task
        if task is not None and not task.done():
            task.cancel()


def _cancel_requested(task: asyncio.Task[None] | None) -> bool:
    """Whether `task` was cancelled (Task.cancelling(), Python 3.11+); before 3.11 a
    CancelledError cannot be told from one the app raised itself, so assume it was."""
    cancelling = getattr(task, "cancelling", None)
    return cancelling is None or bool(cancelling())


def _close_args(message: Message) -> tuple[int, str]:
    code = message.get("code")
    if code is None:
        code = NORMAL
    reason = message.get("reason")
    if reason is None:
        reason = ""
    if type(code) is not int or type(reason) is not str:
        raise TypeError(f"websocket.close needs an int code and a str reason, got {code!r}, {reason!r}")
    try:
        Close(code, reason).serialize()
    except ProtocolError:
        raise ValueError(f"websocket.close code {code} is not a code an endpoint may send") from None
    if len(reason.encode()) > 123:
        raise ValueError("websocket.close reason is longer than 123 bytes in UTF-8")
    return code, reason


def _as_bytes(data: Any, what: str) -> bytes:
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"{what} must be bytes, not {type(data).__name__}")
