"""Form bodies: application/x-www-form-urlencoded and multipart/form-data.

Both are parsed as the body streams in, with python-multipart's push parsers. The
parser's callbacks only record what they saw; the async loop that feeds the parser
then acts on those records (writing upload bytes may need a thread when the file has
rolled over to disk). Limits on fields, files and part sizes are checked as bytes
arrive, so an oversize upload is refused without being stored whole.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from python_multipart import MultipartParser, QuerystringParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartState, parse_options_header

from dartle.asgi.concurrency import run_sync
from dartle.web.datastructures import Headers, ImmutableMultiDict
from dartle.web.exceptions import HTTPException

if TYPE_CHECKING:
    from dartle.web.requests import Request

__all__ = ["FormData", "FormLimits", "UploadFile", "parse_form"]


@dataclass(frozen=True)
class FormLimits:
    """Bounds applied while parsing a form.

    max_fields / max_files: how many plain fields / file parts (over → 400).
    max_part_size: bytes of one plain field's value (over → 413).
    max_file_size: bytes of one uploaded file, None for no bound (over → 413).
    spool_max_size: bytes of an upload kept in memory before it moves to a temp file.
    """

    max_fields: int = 1000
    max_files: int = 1000
    max_part_size: int = 1024 * 1024
    max_file_size: int | None = None
    spool_max_size: int = 1024 * 1024


DEFAULT_LIMITS = FormLimits()


class UploadFile:
    """An uploaded file: its metadata and a spooled temporary file holding its bytes.

    The async methods move to the thread pool only once the file lives on disk.
    """

    def __init__(
        self,
        file: IO[bytes],
        *,
        size: int | None = None,
        filename: str | None = None,
        headers: Headers | None = None,
    ) -> None:
        self.filename = filename
        self.file = file
        self.size = size
        self.headers = headers if headers is not None else Headers()

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")

    @property
    def _in_memory(self) -> bool:
        rolled = getattr(self.file, "_rolled", True)
        return not rolled

    async def write(self, data: bytes) -> None:
        """Append `data` (counts toward `size`)."""
        if self.size is not None:
            self.size += len(data)
        if self._in_memory:
            self.file.write(data)
        else:
            await run_sync(self.file.write, data)

    async def read(self, size: int = -1) -> bytes:
        """Read up to `size` bytes from the current position (all by default)."""
        if self._in_memory:
            return self.file.read(size)
        return await run_sync(self.file.read, size)

    async def seek(self, offset: int) -> None:
        """Move to byte `offset`."""
        if self._in_memory:
            self.file.seek(offset)
        else:
            await run_sync(self.file.seek, offset)

    async def close(self) -> None:
        """Close (and so delete) the temporary file."""
        if self._in_memory:
            self.file.close()
        else:
            await run_sync(self.file.close)

    def __repr__(self) -> str:
        return (
            f"UploadFile(filename={self.filename!r}, size={self.size!r}, content_type={self.content_type!r})"
        )


class FormData(ImmutableMultiDict["str | UploadFile"]):
    """Parsed form fields: str for plain fields, UploadFile for files."""

    __slots__ = ()

    async def close(self) -> None:
        """Close every uploaded file."""
        for _, value in self._list:
            if isinstance(value, UploadFile):
                await value.close()


async def parse_form(request: Request, limits: FormLimits | None = None) -> FormData:
    """Parse `request`'s body as a form, by its Content-Type."""
    if limits is None:
        limits = getattr(request.app, "form_limits", None) or DEFAULT_LIMITS
    content_type, options = parse_options_header(request.headers.get("content-type"))
    if content_type == b"multipart/form-data":
        boundary = options.get(b"boundary")
        if not boundary:
            raise HTTPException(400, "Malformed multipart body: the Content-Type has no boundary")
        return await _MultipartReader(request, boundary, limits).read()
    if content_type == b"application/x-www-form-urlencoded":
        return await _read_urlencoded(request, limits)
    if not content_type:
        await request.body()
        return FormData()
    raise HTTPException(
        415,
        f"Unsupported form content type {content_type.decode('latin-1')!r}: expected "
        "multipart/form-data or application/x-www-form-urlencoded",
    )


async def _read_urlencoded(request: Request, limits: FormLimits) -> FormData:
    fields: list[tuple[str, str]] = []
    name = bytearray()
    value = bytearray()
    in_value = False

    def on_field_start() -> None:
        nonlocal in_value
        name.clear()
        value.clear()
        in_value = False
        if len(fields) >= limits.max_fields:
            raise HTTPException(400, f"Too many form fields: the limit is {limits.max_fields}")

    def on_field_name(data: bytes, start: int, end: int) -> None:
        name.extend(data[start:end])

    def on_field_data(data: bytes, start: int, end: int) -> None:
        nonlocal in_value
        in_value = True
        value.extend(data[start:end])
        if len(value) > limits.max_part_size:
            field = unquote_plus(name.decode("latin-1"))
            raise HTTPException(413, f"Form field {field!r} is larger than {limits.max_part_size} bytes")

    def on_field_end() -> None:
        fields.append((unquote_plus(name.decode("latin-1")), unquote_plus(value.decode("latin-1"))))

    parser = QuerystringParser(
        {
            "on_field_start": on_field_start,
            "on_field_name": on_field_name,
            "on_field_data": on_field_data,
            "on_field_end": on_field_end,
        }
    )
    try:
        async for chunk in request.stream():
            if chunk:
                parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise HTTPException(400, f"Malformed urlencoded form: {exc}") from exc
    return FormData(fields)


class _MultipartReader:
    """One multipart body: python-multipart callbacks record, `read()` acts."""

    def __init__(self, request: Request, boundary: bytes, limits: FormLimits) -> None:
        self.request = request
        self.limits = limits
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
            },
        )
        # (kind, payload) records since the last feed: "headers", "data", "end".
        self.events: list[tuple[str, Any]] = []
        self.header_name = bytearray()
        self.header_value = bytearray()
        self.part_headers: list[tuple[bytes, bytes]] = []
        self.items: list[tuple[str, str | UploadFile]] = []
        self.fields = 0
        self.files = 0

    # --- parser callbacks: record only -------------------------------------

    def _on_part_begin(self) -> None:
        self.part_headers = []

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name.extend(data[start:end])

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value.extend(data[start:end])

    def _on_header_end(self) -> None:
        self.part_headers.append((bytes(self.header_name).lower(), bytes(self.header_value)))
        self.header_name.clear()
        self.header_value.clear()

    def _on_headers_finished(self) -> None:
        self.events.append(("headers", self.part_headers))

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        self.events.append(("data", data[start:end]))

    def _on_part_end(self) -> None:
        self.events.append(("end", None))

    # --- the loop that acts -------------------------------------------------

    async def read(self) -> FormData:
        limits = self.limits
        name = ""
        upload: UploadFile | None = None
        value = bytearray()
        try:
            async for chunk in self.request.stream():
                if chunk:
                    try:
                        self.parser.write(chunk)
                    except FormParserError as exc:
                        raise HTTPException(400, f"Malformed multipart body: {exc}") from exc
                events, self.events = self.events, []
                for kind, payload in events:
                    if kind == "headers":
                        name, upload = self._start_part(payload)
                        value.clear()
                    elif kind == "data":
                        if upload is None:
                            value.extend(payload)
                            if len(value) > limits.max_part_size:
                                raise HTTPException(
                                    413,
                                    f"Form field {name!r} is larger than {limits.max_part_size} bytes",
                                )
                        else:
                            if limits.max_file_size is not None and (
                                (upload.size or 0) + len(payload) > limits.max_file_size
                            ):
                                raise HTTPException(
                                    413,
                                    f"Uploaded file {upload.filename!r} is larger than "
                                    f"{limits.max_file_size} bytes",
                                )
                            await upload.write(payload)
                    else:
                        if upload is None:
                            self.items.append((name, value.decode("utf-8", errors="replace")))
                        else:
                            await upload.seek(0)
                            self.items.append((name, upload))
                        upload = None
            try:
                self.parser.finalize()
            except FormParserError as exc:
                raise HTTPException(400, f"Malformed multipart body: {exc}") from exc
            if self.parser.state != MultipartState.END:
                raise HTTPException(400, "Malformed multipart body: it ends before the closing boundary")
        except BaseException:
            if upload is not None:
                await upload.close()
            await FormData(self.items).close()
            raise
        return FormData(self.items)

    def _start_part(self, raw_headers: list[tuple[bytes, bytes]]) -> tuple[str, UploadFile | None]:
        limits = self.limits
        disposition = b""
        for key, val in raw_headers:
            if key == b"content-disposition":
                disposition = val
        kind, options = parse_options_header(disposition)
        if kind != b"form-data" or b"name" not in options:
            raise HTTPException(
                400, "Malformed multipart body: a part lacks 'Content-Disposition: form-data; name=...'"
            )
        name = options[b"name"].decode("utf-8", errors="replace")
        if b"filename" not in options:
            self.fields += 1
            if self.fields > limits.max_fields:
                raise HTTPException(400, f"Too many form fields: the limit is {limits.max_fields}")
            return name, None
        self.files += 1
        if self.files > limits.max_files:
            raise HTTPException(400, f"Too many files: the limit is {limits.max_files}")
        # Closed by UploadFile.close() / FormData.close(), not here.
        spool = tempfile.SpooledTemporaryFile(max_size=limits.spool_max_size)  # noqa: SIM115
        upload = UploadFile(
            spool,
            size=0,
            filename=options[b"filename"].decode("utf-8", errors="replace"),
            headers=Headers(raw=raw_headers),
        )
        return name, upload
