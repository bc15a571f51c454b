"""Exceptions a handler raises to answer with an error, and the ones the framework raises."""

from __future__ import annotations

import http
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ClientDisconnect",
    "HTTPException",
    "WebSocketDisconnect",
    "WebSocketException",
]


class HTTPException(Exception):
    """Answer the request with `status_code`, `detail` and extra `headers`.

    `detail` defaults to the status phrase ("Not Found"). The default handler sends
    JSON `{"detail": ...}` (plain text for a str detail when the client asked for it
    is not needed: JSON is what API clients parse).
    """

    def __init__(
        self,
        status_code: int,
        detail: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if detail is None:
            try:
                detail = http.HTTPStatus(status_code).phrase
            except ValueError:
                detail = ""
        super().__init__(status_code, detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = dict(headers) if headers else None

    def __str__(self) -> str:
        return f"{self.status_code}: {self.detail}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code!r}, detail={self.detail!r})"


class WebSocketException(Exception):
    """Close the WebSocket with `code` (RFC 6455 section 7.4) and `reason`."""

    def __init__(self, code: int, reason: str | None = None) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason or ""

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"


class WebSocketDisconnect(Exception):
    """The peer closed the WebSocket (`code` from its close frame, 1005 if none)."""

    def __init__(self, code: int = 1000, reason: str | None = None) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason or ""


class ClientDisconnect(Exception):
    """The client went away while the request body was being read."""
