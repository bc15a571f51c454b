"""HTTP/1 wire constants: status lines, the cached Date/Server header block, canned errors."""

from __future__ import annotations

import http
from email.utils import formatdate

STATUS_LINES: dict[int, bytes] = {
    s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode()) for s in http.HTTPStatus
}


def status_line(status: int) -> bytes:
    line = STATUS_LINES.get(status)
    if line is None:
        line = b"HTTP/1.1 %d \r\n" % status
    return line


def date_value() -> bytes:
    return formatdate(usegmt=True).encode()


class CommonHeaders:
    """The Date and Server header lines every response carries, rebuilt once a second.

    One instance per server; connections read `.block` when they write a head, so the
    per-request cost is an attribute read.
    """

    __slots__ = ("block", "date", "lines", "server")

    def __init__(self, date: bool, server: bool) -> None:
        self.date = date
        self.server = server
        self.block = b""
        self.lines = 0
        self.refresh()

    def refresh(self) -> None:
        block = b""
        if self.date:
            block += b"date: " + date_value() + b"\r\n"
        if self.server:
            block += b"server: dartle\r\n"
        self.block = block
        self.lines = block.count(b"\n")


def error_response(common: CommonHeaders, status: int, message: str) -> bytes:
    """A complete plain-text response that also tells the client we are closing."""
    body = message.encode() + b"\n"
    return b"".join(
        (
            status_line(status),
            common.block,
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        )
    )
