"""A response that sends a file: validators, conditional requests and byte ranges.

`FileResponse` answers on its own what HTTP lets a client ask about a file
(RFC 9110 sections 13 and 14):

* it sends `ETag` (from the file's modification time and size) and `Last-Modified`;
* `If-None-Match` / `If-Modified-Since` that still hold give 304 Not Modified,
  `If-Match` / `If-Unmodified-Since` that fail give 412 Precondition Failed;
* `Range: bytes=...` gives 206 with one range, or `multipart/byteranges` with several,
  and 416 (with `Content-Range: bytes */size`) when none can be satisfied; `If-Range`
  with a stale validator gives the whole file instead;
* HEAD gets the headers GET would, and no body.

When the whole file goes out and the server offers the `http.response.pathsend`
extension, the server sends the file itself (it may use sendfile); otherwise the file
is read in chunks in the thread pool, so the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
import os
import re
import secrets
import stat
import sys
from collections.abc import Mapping, Sequence
from email.utils import formatdate, parsedate_to_datetime
from typing import IO, Literal
from urllib.parse import quote

from dartle.asgi.concurrency import run_sync
from dartle.web.background import BackgroundTask
from dartle.web.datastructures import Headers
from dartle.web.responses import Response, _wait_for_disconnect
from dartle.web.types import Receive, Scope, Send

__all__ = ["FileResponse", "parse_range"]

# A range request for more pieces than this is answered with the whole file: many tiny
# or overlapping ranges cost the server far more than they save (CVE-2011-3192).
MAX_RANGES = 64
_ETAG = re.compile(r'\s*((?:W/)?"[^"]*")\s*(?:,|$)')
# Headers a 304 keeps (RFC 9110 section 15.4.5): it describes the cached copy, so the
# body's own metadata (length, type, disposition) is left out.
_DROPPED_ON_304 = frozenset(
    {b"content-type", b"content-length", b"content-disposition", b"content-language", b"accept-ranges"}
)


class FileResponse(Response):
    """Send the file at `path`, answering conditional and range requests.

    `media_type` defaults to a guess from `filename` (or `path`), else
    `application/octet-stream`. With `filename`, a `Content-Disposition` header names
    the download (`content_disposition_type="inline"` to show it in the browser
    instead); non-ASCII names are sent as RFC 5987 `filename*`. `stat_result` saves a
    `stat()` when the caller already has one. Validators and ranges apply when
    `status_code` is 200; with any other status (a 404 page, say) the file is simply
    sent.
    """

    chunk_size = 64 * 1024

    def __init__(
        self,
        path: str | os.PathLike[str],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
        filename: str | None = None,
        stat_result: os.stat_result | None = None,
        content_disposition_type: Literal["attachment", "inline"] = "attachment",
    ) -> None:
        self.path = os.fspath(path)
        self.status_code = status_code
        self.filename = filename
        self.background = background
        if media_type is None:
            media_type = mimetypes.guess_type(filename or self.path)[0] or "application/octet-stream"
        self.media_type = media_type
        self.body = None  # type: ignore[assignment]  # no body in memory: it is read when sent
        self.init_headers(headers)
        if filename is not None:
            self.headers.setdefault(
                "content-disposition", content_disposition(filename, content_disposition_type)
            )
        self.stat_result = stat_result
        if stat_result is not None:
            self._set_stat_headers(stat_result)

    def _set_stat_headers(self, st: os.stat_result) -> None:
        headers = self.headers
        headers.setdefault("content-length", str(st.st_size))
        if self.status_code != 200:
            return  # an error page: it is not the representation validators describe
        headers.setdefault("last-modified", formatdate(st.st_mtime, usegmt=True))
        # Changes when the file is rewritten, even within the same second, or resized.
        headers.setdefault("etag", f'"{st.st_mtime_ns:x}-{st.st_size:x}"')
        headers.setdefault("accept-ranges", "bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.stat_result is None:
            self.stat_result = await run_sync(_stat_file, self.path)
            self._set_stat_headers(self.stat_result)
        size = self.stat_result.st_size
        method = scope.get("method", "GET")
        request = Headers(scope=scope)

        status = self.status_code
        ranges: list[tuple[int, int]] = []
        if status == 200:
            status = self._precondition_status(request, method)
            if status == 200 and method == "GET":
                ranges_or_status = self._ranges(request, size)
                if isinstance(ranges_or_status, int):
                    status = ranges_or_status
                else:
                    ranges = ranges_or_status
                    status = 206 if ranges else 200

        if status in (304, 412, 416):
            await self._send_empty(send, status, size)
            completed = True
        elif status == 206 and len(ranges) > 1:
            completed = await self._send_multipart(scope, receive, send, ranges, size, method)
        elif status == 206:
            start, end = ranges[0]
            headers = self._headers_with(
                {"content-range": f"bytes {start}-{end}/{size}", "content-length": str(end - start + 1)}
            )
            completed = await self._send_file(receive, send, 206, headers, [(start, end + 1)], method)
        else:
            pieces = [(0, size)]
            if status == 200 and method == "GET" and "http.response.pathsend" in scope.get("extensions", {}):
                await send({"type": "http.response.start", "status": status, "headers": self.raw_headers})
                await send({"type": "http.response.pathsend", "path": os.path.abspath(self.path)})
                completed = True
            else:
                completed = await self._send_file(receive, send, status, self.raw_headers, pieces, method)
        if completed and self.background is not None:
            await self.background()

    # -- deciding ----------------------------------------------------------------------

    def _precondition_status(self, request: Headers, method: str) -> int:
        """200 to go on, or 304 / 412 (RFC 9110 section 13.2.2, in its order)."""
        etag = self.headers["etag"]
        modified = int(self.stat_result.st_mtime) if self.stat_result is not None else 0
        if_match = request.get("if-match")
        if if_match is not None:
            if not _etag_matches(if_match, etag, weak=False):
                return 412
        else:
            since = _parse_date(request.get("if-unmodified-since"))
            if since is not None and modified > since:
                return 412
        if_none_match = request.get("if-none-match")
        if if_none_match is not None:
            if _etag_matches(if_none_match, etag, weak=True):
                return 304 if method in ("GET", "HEAD") else 412
        elif method in ("GET", "HEAD"):
            since = _parse_date(request.get("if-modified-since"))
            if since is not None and modified <= since:
                return 304
        return 200

    def _ranges(self, request: Headers, size: int) -> list[tuple[int, int]] | int:
        """The ranges to send ([] for the whole file), or 416."""
        header = request.get("range")
        if header is None:
            return []
        if_range = request.get("if-range")
        if if_range is not None and not self._if_range_holds(if_range.strip()):
            return []  # the client's copy is stale: it needs the whole file anyway
        ranges = parse_range(header, size)
        if ranges is None:
            return []  # not a byte range we understand: ignored, as RFC 9110 allows
        return ranges if ranges else 416

    def _if_range_holds(self, value: str) -> bool:
        if value.startswith(('"', "W/")):
            # Only a strong validator may be used to splice partial content.
            etag = self.headers["etag"]
            return not value.startswith("W/") and not etag.startswith("W/") and value == etag
        return value == self.headers.get("last-modified")

    def _headers_with(self, changes: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
        names = {name.encode("latin-1") for name in changes}
        raw = [(k, v) for k, v in self.raw_headers if k not in names]
        raw.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in changes.items())
        return raw

    # -- sending -----------------------------------------------------------------------

    async def _send_empty(self, send: Send, status: int, size: int) -> None:
        if status == 304:
            raw = [(k, v) for k, v in self.raw_headers if k not in _DROPPED_ON_304]
        else:
            changes = {"content-length": "0"}
            if status == 416:
                changes["content-range"] = f"bytes */{size}"
            raw = [
                (k, v)
                for k, v in self._headers_with(changes)
                if k not in (b"content-type", b"content-disposition", b"etag", b"last-modified")
            ]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": b""})

    async def _send_multipart(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        ranges: list[tuple[int, int]],
        size: int,
        method: str,
    ) -> bool:
        boundary = secrets.token_hex(16)
        part_type = self.headers.get("content-type", "application/octet-stream")
        pieces: list[tuple[int, int] | bytes] = []
        for start, end in ranges:
            head = (
                f"--{boundary}\r\nContent-Type: {part_type}\r\n"
                f"Content-Range: bytes {start}-{end}/{size}\r\n\r\n"
            )
            pieces += [head.encode("latin-1"), (start, end + 1), b"\r\n"]
        pieces.append(f"--{boundary}--\r\n".encode("latin-1"))
        headers = self._headers_with(
            {
                "content-type": f"multipart/byteranges; boundary={boundary}",
                "content-length": str(_length(pieces)),
            }
        )
        return await self._send_file(receive, send, 206, headers, pieces, method)

    async def _send_file(
        self,
        receive: Receive,
        send: Send,
        status: int,
        headers: list[tuple[bytes, bytes]],
        pieces: Sequence[tuple[int, int] | bytes],
        method: str,
    ) -> bool:
        """Send the start, then `pieces` (file spans `(start, stop)` or literal bytes).

        Returns False when the client went away before the end.
        """
        await send({"type": "http.response.start", "status": status, "headers": headers})
        total = _length(pieces)
        if method == "HEAD" or total == 0:
            await send({"type": "http.response.body", "body": b""})
            return True
        file = await run_sync(open, self.path, "rb")
        watcher: asyncio.Task[None] | None = None
        if total > self.chunk_size:
            # Several sends: stop reading the disk if the client leaves meanwhile (not
            # every server makes send() fail once the connection is gone).
            watcher = asyncio.get_running_loop().create_task(_wait_for_disconnect(receive))
        try:
            remaining = total
            for piece in pieces:
                if isinstance(piece, bytes):
                    remaining -= len(piece)
                    await send({"type": "http.response.body", "body": piece, "more_body": remaining > 0})
                    continue
                offset, stop = piece
                while offset < stop:
                    if watcher is not None and watcher.done():
                        return False
                    count = min(self.chunk_size, stop - offset)
                    chunk = await run_sync(_read_at, file, offset, count)
                    if len(chunk) != count:
                        raise RuntimeError(
                            f"file {self.path!r} shrank while it was being sent"
                            f" (read {len(chunk)} of {count} bytes at offset {offset})"
                        )
                    offset += count
                    remaining -= count
                    await send({"type": "http.response.body", "body": chunk, "more_body": remaining > 0})
        except OSError:
            # ASGI 2.4: send() raises OSError once the client has gone.
            return False
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await run_sync(file.close)
        return True


def _length(pieces: Sequence[tuple[int, int] | bytes]) -> int:
    return sum(p[1] - p[0] if isinstance(p, tuple) else len(p) for p in pieces)


def _stat_file(path: str) -> os.stat_result:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise RuntimeError(f"FileResponse: no file at {path!r}") from None
    if not stat.S_ISREG(st.st_mode):
        raise RuntimeError(f"FileResponse: {path!r} is not a regular file")
    return st


def _read_at(file: IO[bytes], offset: int, count: int) -> bytes:
    file.seek(offset)
    return file.read(count)


def parse_range(header: str, size: int) -> list[tuple[int, int]] | None:
    """The byte ranges of a Range header for a file of `size` bytes.

    Returns inclusive `(first, last)` pairs, sorted, with overlapping and adjacent
    ranges merged; `[]` when none is satisfiable (416); None when the header is not a
    valid `bytes=` range set, or asks for more than MAX_RANGES pieces (the header is
    then ignored and the whole file sent).
    """
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        return None
    specs = spec.split(",")
    if len(specs) > MAX_RANGES:
        return None
    ranges: list[tuple[int, int]] = []
    for item in specs:
        first, dash, last = item.strip().partition("-")
        if not dash:
            return None
        if not first:  # "-N": the last N bytes
            if not last.isdigit():
                return None
            suffix = int(last)
            if suffix > 0 and size > 0:
                ranges.append((max(0, size - suffix), size - 1))
            continue
        if not first.isdigit() or (last and not last.isdigit()):
            return None
        start = int(first)
        if last and int(last) < start:
            return None
        if start < size:
            ranges.append((start, min(int(last), size - 1) if last else size - 1))
    ranges.sort()
    merged: list[tuple[int, int]] = []
    for start, end in ranges:
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """A Content-Disposition value naming `filename` (RFC 6266, RFC 5987 for non-ASCII)."""
    # Path separators and control characters have no business in a download name.
    cleaned = "".join(c for c in filename if c >= " " and c not in "/\\\x7f")
    ascii_name = cleaned.encode("ascii", "replace").decode("ascii").replace("?", "_")
    quoted = ascii_name.replace('"', '\\"')  # backslashes are gone already
    value = f'{disposition}; filename="{quoted}"'
    if ascii_name != cleaned:
        value += f"; filename*=UTF-8''{quote(cleaned, safe='')}"
    return value


def _etag_matches(header: str, etag: str, *, weak: bool) -> bool:
    """Whether If-Match / If-None-Match `header` lists `etag` (or is `*`)."""
    header = header.strip()
    if header == "*":
        return True
    current = etag[2:] if etag.startswith("W/") else etag
    for match in _ETAG.finditer(header):
        candidate = match.group(1)
        if weak:
            if (candidate[2:] if candidate.startswith("W/") else candidate) == current:
                return True
        elif not candidate.startswith("W/") and not etag.startswith("W/") and candidate == etag:
            return True
    return False


def _parse_date(value: str | None) -> int | None:
    """An HTTP date as a POSIX timestamp (whole seconds), or None if absent or invalid."""
    if not value:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


# responses.py re-exports FileResponse by importing this module at its end. When this
# module is imported first, that import meets it half-built and the re-export is
# skipped; complete it here so that `from dartle.web.responses import FileResponse`
# works whatever was imported first.
_responses_module = sys.modules["dartle.web.responses"]
_responses_module.__dict__.setdefault("FileResponse", FileResponse)
