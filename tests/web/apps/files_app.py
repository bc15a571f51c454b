"""FileResponse and StaticFiles apps over the directory named by $DARTLE_TEST_FILES.

files:      plain ASGI; GET /file/NAME?filename=X&inline=1&type=T sends NAME with
            FileResponse; /missing sends a file that is not there
pathsend:   `files` behind a shim that advertises `http.response.pathsend` and
            fulfils it itself, marking such responses with `x-served-by: pathsend`
            (uvicorn does not implement the extension, so this is how the branch runs)
static / static_html / static_follow:  StaticFiles at the root
mounted:    a dartle App with StaticFiles(html=True) mounted at /static
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qsl

from dartle.web.app import App
from dartle.web.fileresponse import FileResponse
from dartle.web.responses import PlainTextResponse
from dartle.web.routing import Mount
from dartle.web.staticfiles import StaticFiles

DIRECTORY = os.environ.get("DARTLE_TEST_FILES", "/nonexistent")


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        await send({"type": message["type"] + ".complete"})
        if message["type"] == "lifespan.shutdown":
            return


async def files(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    query = dict(parse_qsl(scope["query_string"].decode()))
    path = scope["path"]
    if path.startswith("/file/"):
        response = FileResponse(
            os.path.join(DIRECTORY, path[len("/file/") :]),
            filename=query.get("filename"),
            media_type=query.get("type"),
            content_disposition_type="inline" if query.get("inline") else "attachment",
        )
    elif path == "/missing":
        response = FileResponse(os.path.join(DIRECTORY, "no-such-file"))
    else:
        response = PlainTextResponse("no route", status_code=404)
    await response(scope, receive, send)


class PathsendShim:
    """Offer the pathsend extension to the app and carry it out (reading the file)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope = {**scope, "extensions": {**scope.get("extensions", {}), "http.response.pathsend": {}}}
        held: dict[str, Any] = {}

        async def shim_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                held["start"] = message
                return
            start = held.pop("start", None)
            if message["type"] == "http.response.pathsend":
                assert start is not None, "pathsend must follow the response start"
                assert os.path.isabs(message["path"])
                start = {**start, "headers": [*start["headers"], (b"x-served-by", b"pathsend")]}
                await send(start)
                with open(message["path"], "rb") as f:
                    await send({"type": "http.response.body", "body": f.read()})
                return
            if start is not None:
                await send(start)
            await send(message)

        await self.app(scope, receive, shim_send)


pathsend = PathsendShim(files)
static = StaticFiles(directory=DIRECTORY)
static_html = StaticFiles(directory=DIRECTORY, html=True)
static_follow = StaticFiles(directory=DIRECTORY, follow_symlink=True)
mounted = App(routes=[Mount("/static", StaticFiles(directory=DIRECTORY, html=True))])
