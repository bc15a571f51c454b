"""The WebSocket session a handler talks to.

It wraps the ASGI websocket events with a small state machine (connecting, connected,
disconnected, for each side) so that misuse gives a clear error instead of a confused
server. A message of the wrong kind (binary where text was expected, invalid JSON)
raises `WebSocketException` with the close code RFC 6455 assigns to it (1003, 1007);
the route closes the socket with that code unless the handler catches it.
"""

from __future__ import annotations

import enum
import json
from collections.abc import AsyncIterator, Iterable
from typing import Any, Literal

from dartle.web.exceptions import WebSocketDisconnect, WebSocketException
from dartle.web.requests import HTTPConnection
from dartle.web.responses import Response
from dartle.web.types import Message, Receive, Scope, Send

__all__ = ["WebSocket", "WebSocketDisconnect", "WebSocketException", "WebSocketState"]

UNSUPPORTED_DATA = 1003
INVALID_PAYLOAD = 1007
POLICY_VIOLATION = 1008
INTERNAL_ERROR = 1011
DENIAL_EXTENSION = "websocket.http.response"


class WebSocketState(enum.Enum):
    CONNECTING = 0
    CONNECTED = 1
    DISCONNECTED = 2
    RESPONSE = 3  # the handshake was answered with an HTTP response


class WebSocket(HTTPConnection):
    """One WebSocket connection: accept it, exchange messages, close it."""

    __slots__ = ("application_state", "client_state")

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            raise ValueError("WebSocket needs a websocket scope")
        super().__init__(scope, receive, send)
        self.client_state = WebSocketState.CONNECTING
        self.application_state = WebSocketState.CONNECTING

    # --- raw events ---------------------------------------------------------

    async def receive(self) -> Message:
        """The next raw ASGI event from the client."""
        state = self.client_state
        if state is WebSocketState.DISCONNECTED:
            raise RuntimeError("the WebSocket is disconnected; receive() is no longer allowed")
        message = await self._receive()
        kind = message["type"]
        if state is WebSocketState.CONNECTING:
            if kind != "websocket.connect":
                if kind == "websocket.disconnect":
                    self.client_state = WebSocketState.DISCONNECTED
                    return message
                raise RuntimeError(f"expected 'websocket.connect', got {kind!r}")
            self.client_state = WebSocketState.CONNECTED
        elif kind == "websocket.disconnect":
            self.client_state = WebSocketState.DISCONNECTED
        elif kind != "websocket.receive":
            raise RuntimeError(f"unexpected ASGI event {kind!r}")
        return message

    async def send(self, message: Message) -> None:
        """Send a raw ASGI event to the server."""
        state = self.application_state
        kind = message["type"]
        if state is WebSocketState.DISCONNECTED:
            raise RuntimeError(f"cannot send {kind!r}: the WebSocket is closed")
        if state is WebSocketState.RESPONSE:
            if kind != "websocket.http.response.body":
                raise RuntimeError(f"cannot send {kind!r} while sending a denial response")
            if not message.get("more_body", False):
                self.application_state = WebSocketState.DISCONNECTED
        elif state is WebSocketState.CONNECTING:
            if kind == "websocket.accept":
                self.application_state = WebSocketState.CONNECTED
            elif kind == "websocket.close":
                self.application_state = WebSocketState.DISCONNECTED
            elif kind == "websocket.http.response.start":
                self.application_state = WebSocketState.RESPONSE
            else:
                raise RuntimeError(f"send {kind!r} only after accept()")
        elif kind == "websocket.close":
            self.application_state = WebSocketState.DISCONNECTED
        elif kind != "websocket.send":
            raise RuntimeError(f"cannot send {kind!r} on an open WebSocket")
        try:
            await self._send(message)
        except OSError:
            # ASGI 2.4: the server raises OSError when the connection is already gone.
            self.application_state = WebSocketState.DISCONNECTED
            raise WebSocketDisconnect(1006) from None

    # --- handshake ----------------------------------------------------------

    async def accept(
        self,
        subprotocol: str | None = None,
        headers: Iterable[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """Complete the handshake, choosing `subprotocol` and adding `headers`."""
        if self.client_state is WebSocketState.CONNECTING:
            await self._await_connect()
        await self.send(
            {
                "type": "websocket.accept",
                "subprotocol": subprotocol,
                "headers": [(bytes(k).lower(), bytes(v)) for k, v in headers or ()],
            }
        )

    async def _await_connect(self) -> None:
        message = await self.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1006), message.get("reason"))

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Close the connection (before accept, the server refuses the handshake: 403)."""
        if self.client_state is WebSocketState.CONNECTING:
            await self._await_connect()
        await self.send({"type": "websocket.close", "code": code, "reason": reason or ""})

    @property
    def supports_denial_response(self) -> bool:
        """Whether the server can answer the handshake with an HTTP response."""
        return DENIAL_EXTENSION in self.scope.get("extensions", {})

    async def send_denial_response(self, response: Response) -> None:
        """Refuse the handshake with `response` (e.g. a 401 with a JSON body).

        Needs the server's `websocket.http.response` extension; without it the
        connection is closed before accept, which the server answers with 403.
        """
        if self.application_state is not WebSocketState.CONNECTING:
            raise RuntimeError("a denial response is only possible before accept()")
        if self.client_state is WebSocketState.CONNECTING:
            await self._await_connect()
        if self.supports_denial_response:
            await response(self.scope, self._receive, self._send_as_denial)
        else:
            await self.close(POLICY_VIOLATION)

    async def _send_as_denial(self, message: Message) -> None:
        await self.send({**message, "type": "websocket." + message["type"]})

    # --- messages -----------------------------------------------------------

    async def _message(self) -> Message:
        if self.application_state is not WebSocketState.CONNECTED:
            raise RuntimeError("the WebSocket is not connected: call accept() first")
        message = await self.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1005), message.get("reason"))
        return message

    async def receive_text(self) -> str:
        """The next message, which must be text (binary → close 1003)."""
        message = await self._message()
        text = message.get("text")
        if text is None:
            raise WebSocketException(UNSUPPORTED_DATA, "expected a text message, got binary")
        return text  # type: ignore[no-any-return]

    async def receive_bytes(self) -> bytes:
        """The next message, which must be binary (text → close 1003)."""
        message = await self._message()
        data = message.get("bytes")
        if data is None:
            raise WebSocketException(UNSUPPORTED_DATA, "expected a binary message, got text")
        return data  # type: ignore[no-any-return]

    async def receive_json(self, mode: Literal["text", "binary"] = "text") -> Any:
        """The next message parsed as JSON (wrong kind → 1003, invalid JSON → 1007)."""
        if mode == "text":
            raw: str | bytes = await self.receive_text()
        elif mode == "binary":
            raw = await self.receive_bytes()
        else:
            raise ValueError("mode must be 'text' or 'binary'")
        try:
            return json.loads(raw)
        except UnicodeDecodeError as exc:
            raise WebSocketException(INVALID_PAYLOAD, "the message is not valid UTF-8") from exc
        except json.JSONDecodeError as exc:
            raise WebSocketException(INVALID_PAYLOAD, f"invalid JSON: {exc}") from exc

    async def receive_message(self) -> str | bytes:
        """The next message, text or binary."""
        message = await self._message()
        text = message.get("text")
        return text if text is not None else message["bytes"]  # type: ignore[no-any-return]

    async def send_text(self, data: str) -> None:
        await self.send({"type": "websocket.send", "text": data})

    async def send_bytes(self, data: bytes) -> None:
        await self.send({"type": "websocket.send", "bytes": data})

    async def send_json(self, data: Any, mode: Literal["text", "binary"] = "text") -> None:
        """Send `data` as a JSON text message (or binary UTF-8 with mode='binary')."""
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        if mode == "text":
            await self.send_text(text)
        elif mode == "binary":
            await self.send_bytes(text.encode("utf-8"))
        else:
            raise ValueError("mode must be 'text' or 'binary'")

    # --- iteration (ends quietly when the client disconnects) ----------------

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self._iterate(self.receive_message)

    def iter_text(self) -> AsyncIterator[str]:
        return self._iterate(self.receive_text)

    def iter_bytes(self) -> AsyncIterator[bytes]:
        return self._iterate(self.receive_bytes)

    def iter_json(self) -> AsyncIterator[Any]:
        return self._iterate(self.receive_json)

    @staticmethod
    async def _iterate(next_item: Any) -> AsyncIterator[Any]:
        try:
            while True:
                yield await next_item()
        except WebSocketDisconnect:
            return
