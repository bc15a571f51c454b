"""Refusing a WebSocket handshake with an HTTP response, where the server allows it."""

from __future__ import annotations

from dartle.web.responses import Response
from dartle.web.types import Message, Receive, Scope, Send

__all__ = ["refuse_websocket"]


async def refuse_websocket(scope: Scope, receive: Receive, send: Send, response: Response) -> None:
    """Answer a WebSocket handshake with `response` instead of accepting it.

    Servers that advertise the `websocket.http.response` extension send that response
    as the handshake's answer; on the others the only refusal ASGI offers is a close
    before accept, which the server turns into a 403.
    """
    message = await receive()
    if message["type"] != "websocket.connect":
        return  # the client left before the handshake reached us
    if "websocket.http.response" in scope.get("extensions", {}):

        async def send_as_websocket(event: Message) -> None:
            await send({**event, "type": "websocket." + event["type"]})

        await response(scope, receive, send_as_websocket)
    else:
        await send({"type": "websocket.close", "code": 1008})
