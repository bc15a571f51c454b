"""One real request to a server, checked: before the load (is it ready and right?) and after
it (did it survive?). HTTP/1.1 over a raw socket, HTTP/2 (h2c) with curl, WebSocket over a
raw socket: the harness itself needs only the standard library.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import BinaryIO

from benchmarks.scenarios import Request, Scenario

HOST = "127.0.0.1"
TIMEOUT = 10.0  # seconds for one probe; 1 MiB from a slow server takes well under that


class WrongAnswer(Exception):
    """The server answered, but not what the scenario expects."""


def check(scenario: Scenario, port: int) -> None:
    """Raise WrongAnswer (or OSError) unless the server gives the scenario's right answer."""
    request = scenario.request
    if scenario.mode == "websocket":
        echo = websocket_echo(port, request.path, request.body)
        if echo != request.expected:
            raise WrongAnswer(f"echoed {_short(echo)}, expected {_short(request.expected)}")
        return
    if scenario.mode == "h2c":
        status, body = h2c_request(port, request)
    else:
        status, body = http_request(port, request)
    if status != 200 or not _same(body, request):
        expected = "a valid answer" if request.verify else _short(request.expected)
        problems = "; ".join(request.verify(body)) if request.verify and status == 200 else ""
        raise WrongAnswer(f"answered {status} {_short(body)}, expected 200 {expected}"
                          + (f" ({problems})" if problems else ""))


def _same(body: bytes, request: Request) -> bool:
    if request.verify is not None:
        return not request.verify(body)
    if not request.json:
        return body == request.expected
    try:
        return bool(json.loads(body) == json.loads(request.expected))
    except ValueError:
        return False


def _short(data: bytes) -> str:
    return repr(data[:80]) + (f" ({len(data)} bytes)" if len(data) > 80 else "")


def request_bytes(request: Request, port: int, close: bool = True) -> bytes:
    """The HTTP/1.1 request as bytes (what the probe and the idle client send)."""
    lines = [f"{request.method} {request.path} HTTP/1.1", f"Host: {HOST}:{port}"]
    if request.body or request.method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(request.body)}")
    if request.content_type:
        lines.append(f"Content-Type: {request.content_type}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + request.body


def http_request(port: int, request: Request, timeout: float = TIMEOUT) -> tuple[int, bytes]:
    """One HTTP/1.1 request over a fresh connection (Connection: close): (status, body)."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(request_bytes(request, port))
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split(b" ", 2)[1])
    except (IndexError, ValueError):
        raise WrongAnswer(f"not an HTTP response: {_short(raw)}") from None
    headers = {name.strip().lower(): value.strip()
               for name, _, value in (line.partition(b":") for line in lines[1:])}
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = dechunk(body)
    return status, body


def dechunk(data: bytes) -> bytes:
    """The body of a chunked HTTP/1.1 message (trailers ignored)."""
    body: list[bytes] = []
    position = 0
    while True:
        end = data.find(b"\r\n", position)
        if end < 0:
            raise WrongAnswer("truncated chunked body")
        size = int(data[position:end].split(b";", 1)[0], 16)
        if size == 0:
            return b"".join(body)
        start = end + 2
        body.append(data[start:start + size])
        if len(data) < start + size + 2:
            raise WrongAnswer("truncated chunked body")
        position = start + size + 2


def h2c_request(port: int, request: Request, timeout: float = TIMEOUT) -> tuple[int, bytes]:
    """One HTTP/2 request without TLS (prior knowledge), with curl: (status, body)."""
    curl = shutil.which("curl")
    if curl is None:
        raise WrongAnswer("cannot check an HTTP/2 answer: curl is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "body"
        cmd = [curl, "-sS", "--http2-prior-knowledge", "--max-time", str(timeout), "-o", str(out),
               "-w", "%{http_code} %{http_version}", "-X", request.method,
               f"http://{HOST}:{port}{request.path}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 5)
        if proc.returncode != 0:
            error = proc.stderr.strip().removeprefix("curl: ")[:200]
            raise OSError(f"no HTTP/2 answer to curl --http2-prior-knowledge: {error}")
        status, version = proc.stdout.split()
        if version != "2":
            raise WrongAnswer(f"answered over HTTP/{version}, not HTTP/2")
        return int(status), out.read_bytes()


def websocket_echo(port: int, path: str, message: bytes, timeout: float = TIMEOUT) -> bytes:
    """Open a WebSocket, send `message` as one text frame, return the payload echoed back."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        reader = sock.makefile("rb")
        status_line = reader.readline()
        if b" 101 " not in status_line:
            raise WrongAnswer(f"handshake answered {_short(status_line.strip())}, expected 101")
        while reader.readline() not in (b"\r\n", b""):
            pass
        sock.sendall(masked_frame(0x1, message))
        opcode, payload = read_frame(reader)
        if opcode != 0x1:
            raise WrongAnswer(f"answered with a frame of opcode {opcode:#x}, expected text")
        sock.sendall(masked_frame(0x8, (1000).to_bytes(2, "big")))  # close: normal closure
        return payload


def masked_frame(opcode: int, payload: bytes, compressed: bool = False) -> bytes:
    """A final client frame (clients must mask: RFC 6455 section 5.3).

    compressed: set RSV1, the permessage-deflate bit (RFC 7692).
    """
    mask = os.urandom(4)
    length = len(payload)
    first = 0x80 | (0x40 if compressed else 0) | opcode
    if length < 126:
        head = bytes([first, 0x80 | length])
    elif length < 65536:
        head = bytes([first, 0x80 | 126]) + length.to_bytes(2, "big")
    else:
        head = bytes([first, 0x80 | 127]) + length.to_bytes(8, "big")
    repeated = (mask * (length // 4 + 1))[:length]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(length, "big")
    return head + mask + masked


def read_frame(reader: BinaryIO) -> tuple[int, bytes]:
    """(opcode, payload) of one unmasked, unfragmented server frame."""
    head = reader.read(2)
    if len(head) < 2:
        raise WrongAnswer("the connection closed instead of answering")
    length = head[1] & 0x7F
    if length == 126:
        length = int.from_bytes(reader.read(2), "big")
    elif length == 127:
        length = int.from_bytes(reader.read(8), "big")
    payload = reader.read(length)
    if len(payload) < length:
        raise WrongAnswer("the connection closed inside a WebSocket frame")
    return head[0] & 0x0F, payload
