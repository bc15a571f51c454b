"""A tiny HTTP/1.x client over a raw socket, strict about framing, for black-box server tests.

It sends exactly the bytes a test gives it and parses what comes back itself, so the tests
see the server's framing (Content-Length, chunked, close-delimited, trailers) byte for byte.
Every read has a bounded timeout; a server that never answers fails the test, never hangs it.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
from dataclasses import dataclass, field
from typing import Any

TIMEOUT = 10.0


class ServerClosed(Exception):
    """The server closed the connection before a complete response arrived."""

    def __init__(self, message: str, partial: bytes) -> None:
        super().__init__(f"{message}; received {partial[:300]!r}")
        self.partial = partial


@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    framing: str = "none"  # "length", "chunked", "close" or "none"
    trailers: list[tuple[str, str]] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key == name]

    def json(self) -> Any:
        return json.loads(self.body)


class RawConn:
    """One client connection; `buffer` keeps bytes read past the current response."""

    def __init__(self, sock: socket.socket, timeout: float = TIMEOUT) -> None:
        self.sock = sock
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.buffer = b""

    @classmethod
    def tcp(cls, host: str, port: int, timeout: float = TIMEOUT) -> RawConn:
        return cls(socket.create_connection((host, port), timeout=timeout), timeout)

    @classmethod
    def unix(cls, path: str, timeout: float = TIMEOUT) -> RawConn:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(path)
        return cls(sock, timeout)

    @property
    def local_port(self) -> int:
        return int(self.sock.getsockname()[1])

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def _fill(self) -> bool:
        """Read more bytes into the buffer; False when the server closed (or reset)."""
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return False
        if not data:
            return False
        self.buffer += data
        return True

    def _take_until(self, marker: bytes, what: str) -> bytes:
        while marker not in self.buffer:
            if not self._fill():
                raise ServerClosed(f"connection closed while reading {what}", self.buffer)
        data, self.buffer = self.buffer.split(marker, 1)
        return data

    def _take(self, count: int, what: str) -> bytes:
        while len(self.buffer) < count:
            if not self._fill():
                raise ServerClosed(f"connection closed while reading {what}", self.buffer)
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def read_head(self) -> Response:
        """Read a status line and header section (no body)."""
        head = self._take_until(b"\r\n\r\n", "the response head")
        lines = head.split(b"\r\n")
        parts = lines[0].decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise AssertionError(f"not a status line: {lines[0]!r}")
        headers = []
        for line in lines[1:]:
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep or name != name.strip():
                raise AssertionError(f"malformed response header line {line!r}")
            headers.append((name.lower(), value.strip()))
        return Response(parts[0], int(parts[1]), parts[2] if len(parts) > 2 else "", headers)

    def read_chunk(self) -> bytes:
        """Read one chunk of a chunked body; b"" for the last chunk (trailers not read)."""
        size_line = self._take_until(b"\r\n", "a chunk size")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            return b""
        data = self._take(size, "chunk data")
        if self._take(2, "chunk end") != b"\r\n":
            raise AssertionError("chunk data not followed by CRLF")
        return data

    def read_trailers(self) -> list[tuple[str, str]]:
        section = self._take_until(b"\r\n", "the trailer section")
        trailers = []
        while section:
            name, _, value = section.decode("latin-1").partition(":")
            trailers.append((name.lower(), value.strip()))
            section = self._take_until(b"\r\n", "the trailer section")
        return trailers

    def read_body(self, response: Response, method: str = "GET") -> Response:
        """Read the body that goes with `response`'s head, per RFC 9112 section 6.3."""
        if method == "HEAD" or response.status < 200 or response.status in (204, 304):
            response.framing = "none"
            return response
        encoding = response.header("transfer-encoding")
        if encoding is not None:
            if encoding.lower().split(",")[-1].strip() != "chunked":
                raise AssertionError(f"unexpected transfer-encoding {encoding!r}")
            response.framing = "chunked"
            while chunk := self.read_chunk():
                response.chunks.append(chunk)
            response.body = b"".join(response.chunks)
            response.trailers = self.read_trailers()
        elif response.header("content-length") is not None:
            response.framing = "length"
            response.body = self._take(int(response.header("content-length") or 0), "the body")
        else:
            response.framing = "close"
            response.body = self.read_until_close()
        return response

    def read_response(self, method: str = "GET") -> Response:
        """Read one complete response (a 1xx is returned as is; call again for the final one)."""
        return self.read_body(self.read_head(), method)

    def read_until_close(self) -> bytes:
        """Everything the server sends until it closes the connection."""
        while self._fill():
            pass
        data, self.buffer = self.buffer, b""
        return data

    def closed_by_server(self, timeout: float | None = None) -> bytes:
        """Wait (bounded) for the server to close; returns what it sent first. Fails on timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"server did not close the connection; got {self.buffer!r}")
            self.sock.settimeout(remaining)
            try:
                if not self._fill():
                    break
            except TimeoutError:
                continue
        self.sock.settimeout(self.timeout)
        data, self.buffer = self.buffer, b""
        return data

    def readable(self, timeout: float) -> bool:
        """True if bytes (or EOF) are waiting within `timeout` (used to prove nothing arrives)."""
        if self.buffer:
            return True
        ready, _, _ = select.select([self.sock], [], [], timeout)
        return bool(ready)


def request(
    method: str,
    target: str,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    body: bytes = b"",
    version: str = "HTTP/1.1",
    length: bool = True,
) -> bytes:
    """Serialise a request; Host is added, and Content-Length when there is a body."""
    items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {name.lower() for name, _ in items}
    if "host" not in names:
        items.insert(0, ("Host", "127.0.0.1"))
    if body and length and "content-length" not in names and "transfer-encoding" not in names:
        items.append(("Content-Length", str(len(body))))
    head = f"{method} {target} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in items)
    return head.encode("latin-1") + b"\r\n" + body


def chunked(*parts: bytes, trailers: bytes = b"") -> bytes:
    """A chunked body made of `parts`, with the terminating chunk."""
    out = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts if part)
    return out + b"0\r\n" + trailers + b"\r\n"
