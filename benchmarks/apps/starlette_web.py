"""The framework scenarios' endpoints in Starlette (`benchmarks.apps.starlette_web:app`).

Starlette has no typed endpoints: it serves framework-plaintext and framework-json.
"""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route


async def plaintext(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello, world!")


async def json(request: Request) -> JSONResponse:
    return JSONResponse({"message": "Hello, world!"})


app = Starlette(routes=[Route("/plaintext", plaintext), Route("/json", json)])
