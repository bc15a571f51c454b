"""The ASGI callable types, as the framework names them (defined in dartle.asgi.types)."""

from __future__ import annotations

from dartle.asgi.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send"]
