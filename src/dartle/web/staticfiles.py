"""Serve a directory of files, as an ASGI app to mount: `Mount("/static", StaticFiles(...))`."""

from __future__ import annotations

import logging
import os
import stat

from dartle.asgi.concurrency import run_sync
from dartle.web.datastructures import URL
from dartle.web.fileresponse import FileResponse
from dartle.web.paths import route_path
from dartle.web.responses import PlainTextResponse, RedirectResponse, Response
from dartle.web.types import Receive, Scope, Send

__all__ = ["StaticFiles"]

logger = logging.getLogger("dartle.web.staticfiles")


class StaticFiles:
    """An ASGI app serving the files under `directory` for GET and HEAD.

    A request path maps to a file below `directory` and never outside it: `..`
    segments (however encoded), backslashes, NUL bytes and, unless `follow_symlink`,
    symbolic links leading out of the directory all give 404. Files are sent with
    `FileResponse`, so ETags, conditional requests and ranges work.

    A directory is answered with its `index.html`, if it has one; asked for without
    its trailing slash, it is first redirected to it (307), so that relative links in
    the page resolve. With `html=True`, a `404.html` at the top of the directory is
    the body of every 404, as static site generators expect. `check_dir` makes a
    missing `directory` an error when the app is built rather than a 404 on every
    request.
    """

    def __init__(
        self,
        *,
        directory: str | os.PathLike[str],
        html: bool = False,
        check_dir: bool = True,
        follow_symlink: bool = False,
    ) -> None:
        # Resolved once: requests are compared against the real directory, so that
        # the directory itself may be a link.
        self.directory = os.path.realpath(os.fspath(directory))
        self.html = html
        self.follow_symlink = follow_symlink
        if check_dir and not os.path.isdir(self.directory):
            raise RuntimeError(f"StaticFiles directory {os.fspath(directory)!r} does not exist")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await receive()
                await send({"type": "websocket.close", "code": 1000})
            return
        response = await self.get_response(scope)
        await response(scope, receive, send)

    async def get_response(self, scope: Scope) -> Response:
        """The response for an HTTP request scope (405, 404, redirect or the file)."""
        if scope["method"] not in ("GET", "HEAD"):
            return PlainTextResponse("Method Not Allowed", status_code=405, headers={"allow": "GET, HEAD"})
        path = route_path(scope["path"], scope.get("root_path", ""))
        found = await run_sync(self.lookup, path)
        if found is None:
            return await self._not_found()
        full_path, st = found
        if stat.S_ISDIR(st.st_mode):
            index = await run_sync(self.lookup, path.rstrip("/") + "/index.html")
            if index is None or not stat.S_ISREG(index[1].st_mode):
                return await self._not_found()
            if not scope["path"].endswith("/"):
                # Relative links in the page resolve against the directory only when
                # the URL ends with a slash.
                url = URL(scope=scope)
                return RedirectResponse(url.replace(path=url.path + "/"), status_code=307)
            full_path, st = index
        return FileResponse(full_path, stat_result=st)

    async def _not_found(self) -> Response:
        if self.html:
            page = await run_sync(self.lookup, "/404.html")
            if page is not None and stat.S_ISREG(page[1].st_mode):
                return FileResponse(page[0], status_code=404, stat_result=page[1])
        return PlainTextResponse("Not Found", status_code=404)

    def lookup(self, path: str) -> tuple[str, os.stat_result] | None:
        """The file or directory `path` (a URL path) names, with its stat, or None.

        None when the path is unsafe, leads outside the directory, or names nothing
        servable (missing, unreadable, a device or a pipe). Blocking: call it in a
        thread.
        """
        segments = _safe_segments(path)
        if segments is None:
            return None
        full_path = os.path.join(self.directory, *segments)
        # Following links, they may point anywhere and only the URL path must stay
        # inside; otherwise the real location of the file must be inside too.
        resolve = os.path.normpath if self.follow_symlink else os.path.realpath
        resolved = resolve(full_path)
        if not _is_within(resolved, self.directory):
            return None
        try:
            st = os.stat(resolved)
        except FileNotFoundError:
            return None
        except NotADirectoryError:  # "file.txt/more"
            return None
        except OSError as exc:  # permissions, a name too long, a link loop...
            logger.warning("StaticFiles cannot stat %r: %s", resolved, exc)
            return None
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            return None
        if stat.S_ISREG(st.st_mode) and not os.access(resolved, os.R_OK):
            logger.warning("StaticFiles cannot read %r", resolved)
            return None
        return resolved, st


def _safe_segments(path: str) -> list[str] | None:
    """The non-empty segments of URL path `path`, or None if any is unsafe.

    The server has already percent-decoded the path, so `%2e%2e` arrives here as `..`
    and is refused like a literal one; backslashes and drive letters are refused
    because Windows treats them as separators and roots.
    """
    if "\x00" in path or "\\" in path:
        return None
    segments = [s for s in path.split("/") if s and s != "."]
    for segment in segments:
        if segment == ".." or (len(segment) >= 2 and segment[1] == ":"):
            return None
    return segments


def _is_within(path: str, directory: str) -> bool:
    try:
        return os.path.commonpath([path, directory]) == directory
    except ValueError:  # different drives on Windows
        return False
