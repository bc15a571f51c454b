"""A FastAPI app with the interop routes and a WebSocket echo route."""

import hashlib

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import PlainTextResponse, RedirectResponse, StreamingResponse
from pydantic import BaseModel

app = FastAPI()


class Item(BaseModel):
    name: str
    price: float


@app.get("/", response_class=PlainTextResponse)
async def hello() -> str:
    return "Hello, world!"


@app.get("/json")
async def as_json(request: Request) -> dict:
    return {"framework": "fastapi", "query": dict(request.query_params)}


@app.post("/echo")
async def echo(request: Request) -> dict:
    body = await request.body()
    return {"length": len(body), "sha256": hashlib.sha256(body).hexdigest(),
            "content_type": request.headers.get("content-type")}


@app.post("/items")
async def create_item(item: Item) -> dict:
    return {"item": item.model_dump(), "with_tax": round(item.price * 1.2, 2)}


@app.get("/headers")
async def headers(request: Request) -> dict:
    return {"x-test": request.headers.getlist("x-test")}


@app.get("/cookies", response_class=PlainTextResponse)
async def cookies() -> PlainTextResponse:
    response = PlainTextResponse("cookies set")
    response.set_cookie("a", "1")
    response.set_cookie("b", "2", httponly=True)
    return response


@app.get("/redirect")
async def redirect() -> RedirectResponse:
    return RedirectResponse("/", status_code=302)


@app.get("/stream")
async def stream() -> StreamingResponse:
    async def numbers():
        for i in range(5):
            yield f"{i}\n"

    return StreamingResponse(numbers(), media_type="text/plain")


@app.get("/error")
async def error() -> None:
    raise RuntimeError("interop error route")


@app.get("/path/{rest:path}")
async def path(rest: str, request: Request) -> dict:
    return {"path": request.url.path, "param": rest}


@app.get("/client")
async def client(request: Request) -> dict:
    return {"client": request.client.host if request.client else None,
            "scheme": request.url.scheme, "url": str(request.url)}


@app.websocket("/ws")
async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept(subprotocol=(websocket.scope.get("subprotocols") or [None])[0])
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") == "close":
                await websocket.close(code=4001, reason="asked to close")
                return
            if message.get("text") is not None:
                await websocket.send_text("echo: " + message["text"])
            else:
                await websocket.send_bytes(message["bytes"][::-1])
    except WebSocketDisconnect:
        return
