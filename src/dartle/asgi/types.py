"""ASGI types shared by the server and the framework, and the spec versions we claim."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ASGI_VERSION = "3.0"
# 2.4: send() after the client left raises an OSError subclass. WebSocket-only features
# (2.1-2.3, 2.5) come with the WebSocket server; we claim only what HTTP/1.1 honours.
HTTP_SPEC_VERSION = "2.4"
LIFESPAN_SPEC_VERSION = "2.0"
