"""A Litestar app with the interop routes."""

import hashlib
from collections.abc import AsyncIterator

from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.response import Redirect, Stream


@get("/", media_type=MediaType.TEXT)
async def hello() -> str:
    return "Hello, world!"


@get("/json")
async def as_json(request: Request) -> dict:
    return {"framework": "litestar", "query": dict(request.query_params)}


@post("/echo", status_code=200)
async def echo(request: Request) -> dict:
    body = await request.body()
    return {"length": len(body), "sha256": hashlib.sha256(body).hexdigest(),
            "content_type": request.headers.get("content-type")}


@get("/headers")
async def headers(request: Request) -> dict:
    return {"x-test": request.headers.getall("x-test", [])}


@get("/cookies", media_type=MediaType.TEXT)
async def cookies() -> Response[str]:
    return Response("cookies set", cookies=[Cookie(key="a", value="1"),
                                            Cookie(key="b", value="2", httponly=True)])


@get("/redirect")
async def go_home() -> Redirect:
    return Redirect("/", status_code=302)


@get("/stream")
async def stream() -> Stream:
    async def numbers() -> AsyncIterator[str]:
        for i in range(5):
            yield f"{i}\n"

    return Stream(numbers(), media_type=MediaType.TEXT)


@get("/error")
async def error() -> None:
    raise RuntimeError("interop error route")


@get("/path/{rest:path}")
async def path(request: Request, rest: str) -> dict:
    return {"path": request.url.path, "param": rest}


@get("/client")
async def client(request: Request) -> dict:
    return {"client": request.client.host if request.client else None,
            "scheme": request.url.scheme, "url": str(request.url)}


app = Litestar(route_handlers=[hello, as_json, echo, headers, cookies, go_home, stream, error, path, client])
