"""A Starlette app with the interop routes (see tests/interop/test_frameworks.py)."""

import hashlib

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route


async def hello(request: Request) -> Response:
    return PlainTextResponse("Hello, world!")


async def as_json(request: Request) -> Response:
    return JSONResponse({"framework": "starlette", "query": dict(request.query_params)})


async def echo(request: Request) -> Response:
    body = await request.body()
    return JSONResponse({"length": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                         "content_type": request.headers.get("content-type")})


async def headers(request: Request) -> Response:
    return JSONResponse({"x-test": request.headers.getlist("x-test")})


async def cookies(request: Request) -> Response:
    response = PlainTextResponse("cookies set")
    response.set_cookie("a", "1")
    response.set_cookie("b", "2", httponly=True)
    return response


async def redirect(request: Request) -> Response:
    return RedirectResponse("/", status_code=302)


async def stream(request: Request) -> Response:
    async def numbers():
        for i in range(5):
            yield f"{i}\n"

    return StreamingResponse(numbers(), media_type="text/plain")


async def error(request: Request) -> Response:
    raise RuntimeError("interop error route")


async def path(request: Request) -> Response:
    return JSONResponse({"path": request.url.path, "param": request.path_params["rest"]})


async def client(request: Request) -> Response:
    return JSONResponse({"client": request.client.host if request.client else None,
                         "scheme": request.url.scheme, "url": str(request.url)})


app = Starlette(routes=[
    Route("/", hello),
    Route("/json", as_json),
    Route("/echo", echo, methods=["POST"]),
    Route("/headers", headers),
    Route("/cookies", cookies),
    Route("/redirect", redirect),
    Route("/stream", stream),
    Route("/error", error),
    Route("/path/{rest:path}", path),
    Route("/client", client),
])
