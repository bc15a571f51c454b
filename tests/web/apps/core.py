"""The framework's behavioural test app: one of each feature, served by real servers."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.responses import JSONResponse as StarletteJSON
from starlette.routing import Route as StarletteRoute

from dartle.asgi.concurrency import run_async_from_thread
from dartle.web.app import App
from dartle.web.background import BackgroundTask
from dartle.web.exceptions import HTTPException, WebSocketException
from dartle.web.formparsers import FormLimits, UploadFile
from dartle.web.requests import Request
from dartle.web.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from dartle.web.routing import Router
from dartle.web.sse import EventSourceResponse, ServerSentEvent
from dartle.web.websockets import WebSocket

# --- lifespan ---------------------------------------------------------------------

events: dict[str, asyncio.Event] = {}


def event(name: str) -> asyncio.Event:
    if name not in events:
        events[name] = asyncio.Event()
    return events[name]


@contextlib.asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[dict[str, object]]:
    app.state.started = True
    yield {"db": "connected", "counter": [0]}


class Teapot(Exception):
    pass


async def teapot_handler(request: Request, exc: Exception) -> Response:
    return PlainTextResponse(f"teapot: {exc}", status_code=418)


async def not_found_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"missing": request.url.path, "detail": exc.detail}, status_code=404)


app = App(
    lifespan=lifespan,
    exception_handlers={Teapot: teapot_handler, 404: not_found_handler},
    thread_limit=8,
    form_limits=FormLimits(
        max_fields=5, max_files=2, max_part_size=1024, max_file_size=64 * 1024, spool_max_size=1024
    ),
)

# --- function middleware: context variables cross it both ways --------------------

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
handler_mark: contextvars.ContextVar[str] = contextvars.ContextVar("handler_mark", default="-")


@app.middleware("http")
async def tag_requests(request: Request, call_next):  # type: ignore[no-untyped-def]
    request_id.set(request.headers.get("x-request-id", "none"))
    response = await call_next(request)
    response.headers["x-middleware"] = "tagged"
    response.headers["x-handler-mark"] = handler_mark.get()
    return response


# --- host routing: declared first, so it is tried before the routes below ------------

tenant = Router()


@tenant.get("/")
async def tenant_home(request: Request) -> dict[str, object]:
    return {"tenant": request.path_params["tenant"]}


app.host("{tenant}.example.test", tenant)

# --- plain routes -------------------------------------------------------------------


@app.get("/")
async def home(request: Request) -> Response:
    return PlainTextResponse("Hello, world!")


@app.get("/text")
async def text(request: Request) -> str:
    return "plain value"


@app.get("/dict")
async def as_dict(request: Request) -> dict[str, object]:
    return {"a": 1, "b": [1, 2]}


@app.get("/none")
async def as_none(request: Request) -> None:
    return None


@app.get("/html")
async def html(request: Request) -> Response:
    return HTMLResponse("<h1>hi</h1>")


@app.get("/items/{item_id:int}", name="item")
async def item(request: Request) -> dict[str, object]:
    value = request.path_params["item_id"]
    return {"item_id": value, "type": type(value).__name__}


@app.put("/items/{item_id:int}")
async def put_item(request: Request) -> dict[str, object]:
    return {"updated": request.path_params["item_id"]}


@app.get("/files/{rest:path}")
async def files(request: Request) -> dict[str, object]:
    return {"rest": request.path_params["rest"]}


@app.get("/uuid/{u:uuid}")
async def by_uuid(request: Request) -> dict[str, object]:
    return {"uuid": str(request.path_params["u"]), "version": request.path_params["u"].version}


@app.get("/float/{x:float}")
async def by_float(request: Request) -> dict[str, object]:
    return {"x": request.path_params["x"]}


@app.get("/slash/")
async def slash(request: Request) -> str:
    return "with slash"


@app.get("/inspect")
async def inspect(request: Request) -> dict[str, object]:
    return {
        "method": request.method,
        "url": str(request.url),
        "path": request.url.path,
        "query": request.query_params.multi_items(),
        "headers": request.headers.getlist("x-multi"),
        "cookies": request.cookies,
        "client_host": request.client.host if request.client else None,
        "request_id": request_id.get(),
        "url_for": str(request.url_for("item", item_id=7)),
        "state_db": request.state.db,
        "app_started": request.app.state.started,
    }


@app.post("/echo")
async def echo(request: Request) -> Response:
    body = await request.body()
    return Response(body, media_type=request.headers.get("content-type", "application/octet-stream"))


@app.post("/json")
async def post_json(request: Request) -> dict[str, object]:
    return {"received": await request.json()}


@app.post("/form")
async def post_form(request: Request) -> dict[str, object]:
    form = await request.form()
    out: dict[str, object] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            data = await value.read()
            out[key] = {
                "filename": value.filename,
                "size": len(data),
                "content_type": value.content_type,
                "on_disk": bool(getattr(value.file, "_rolled", False)),
                "head": data[:16].decode("latin-1"),
            }
        else:
            out[key] = value
    await form.close()
    return out


@app.post("/stream-count")
async def stream_count(request: Request) -> dict[str, int]:
    total = chunks = 0
    async for chunk in request.stream():
        total += len(chunk)
        chunks += 1
    return {"bytes": total}


@app.get("/sync")
def sync_handler(request: Request) -> dict[str, object]:
    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    return {"thread": threading.current_thread().name, "doubled": run_async_from_thread(double, 21)}


@app.get("/context")
async def context(request: Request) -> dict[str, str]:
    handler_mark.set("set-in-handler")
    return {"request_id": request_id.get()}


# --- responses ------------------------------------------------------------------------


@app.get("/redirect")
async def redirect(request: Request) -> Response:
    return RedirectResponse("/text", status_code=302)


@app.get("/cookies/set")
async def set_cookies(request: Request) -> Response:
    response = PlainTextResponse("cookies")
    response.set_cookie("plain", "v1", max_age=60, httponly=True)
    response.set_cookie(
        "full",
        "v2",
        path="/cookies",
        domain="localhost",
        secure=True,
        samesite="strict",
        partitioned=True,
        expires=120,
    )
    response.delete_cookie("gone")
    return response


@app.get("/stream/sync")
def stream_sync(request: Request) -> Response:
    def numbers():  # type: ignore[no-untyped-def]
        for i in range(5):
            yield f"{i}\n"

    return StreamingResponse(numbers(), media_type="text/plain")


@app.get("/stream/async")
async def stream_async(request: Request) -> Response:
    async def numbers():  # type: ignore[no-untyped-def]
        for i in range(5):
            yield f"{i}\n".encode()
            await asyncio.sleep(0)

    return StreamingResponse(numbers(), media_type="text/plain")


@app.get("/stream/endless")
async def stream_endless(request: Request) -> Response:
    name = request.query_params["name"]
    stopped = event(f"stopped:{name}")

    async def forever():  # type: ignore[no-untyped-def]
        try:
            yield b"first\n"
            # Then nothing at all: only the disconnect watcher can end this stream.
            await asyncio.Event().wait()
        finally:
            stopped.set()

    return StreamingResponse(forever(), media_type="text/plain")


@app.get("/wait/{name}")
async def wait_for_event(request: Request) -> dict[str, bool]:
    """Report whether event `name` happens within 10 s (an event, not a sleep)."""
    try:
        await asyncio.wait_for(event(request.path_params["name"]).wait(), 10)
    except TimeoutError:
        return {"happened": False}
    return {"happened": True}


@app.get("/sse")
async def sse(request: Request) -> Response:
    async def ticks():  # type: ignore[no-untyped-def]
        yield ServerSentEvent("hello", event="greeting", id=1, retry=2000)
        yield {"data": {"n": 2}, "id": 2}
        yield "multi\nline"
        # Idle long enough for keep-alive comments, then finish.
        await event("sse-release").wait()
        yield ServerSentEvent("done", event="end")

    return EventSourceResponse(ticks(), ping=0.05)


@app.get("/sse/release")
async def sse_release(request: Request) -> str:
    event("sse-release").set()
    return "released"


@app.get("/background")
async def background(request: Request) -> Response:
    name = request.query_params["name"]

    async def after() -> None:
        event(f"bg:{name}").set()

    return PlainTextResponse("sent first", background=BackgroundTask(after))


# --- errors -------------------------------------------------------------------------------


@app.get("/error/http")
async def error_http(request: Request) -> None:
    raise HTTPException(409, "already exists", headers={"x-error": "yes"})


@app.get("/error/teapot")
async def error_teapot(request: Request) -> None:
    raise Teapot("short and stout")


@app.get("/error/crash")
async def error_crash(request: Request) -> None:
    raise RuntimeError("secret internal detail")


# --- routers, mounts, hosts -------------------------------------------------------------

api = Router(prefix="/api", tags=["api"])


@api.get("/users/{name}")
async def api_user(request: Request) -> dict[str, object]:
    return {"user": request.path_params["name"], "tags": request.scope["route"].tags}


app.include_router(api)


async def starlette_where(request):  # type: ignore[no-untyped-def]
    return StarletteJSON(
        {
            "path": request.scope["path"],
            "root_path": request.scope["root_path"],
            "url": str(request.url),
            "route_path": request.url.path[len(request.scope["root_path"]) :],
        }
    )


app.mount("/starlette", Starlette(routes=[StarletteRoute("/where", starlette_where)]))

sub = App()


@sub.get("/where")
async def sub_where(request: Request) -> dict[str, object]:
    return {"path": request.scope["path"], "root_path": request.scope["root_path"], "url": str(request.url)}


app.mount("/sub", sub, name="sub")


# --- WebSockets -----------------------------------------------------------------------------


@app.websocket("/ws/echo")
async def ws_echo(websocket: WebSocket) -> None:
    subprotocols = websocket.scope.get("subprotocols", [])
    await websocket.accept(
        subprotocol=subprotocols[0] if subprotocols else None, headers=[(b"x-ws", b"hello")]
    )
    async for message in websocket:
        if isinstance(message, str):
            if message == "close":
                await websocket.close(4000, "asked to close")
                return
            await websocket.send_text("echo:" + message)
        else:
            await websocket.send_bytes(b"echo:" + message)


@app.websocket("/ws/json")
async def ws_json(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        data = await websocket.receive_json()
        await websocket.send_json({"got": data})


@app.websocket("/ws/text-only")
async def ws_text_only(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        await websocket.send_text(await websocket.receive_text())


@app.websocket("/ws/deny")
async def ws_deny(websocket: WebSocket) -> None:
    await websocket.send_denial_response(
        JSONResponse({"detail": "no entry"}, status_code=401, headers={"x-denied": "1"})
    )


@app.websocket("/ws/policy")
async def ws_policy(websocket: WebSocket) -> None:
    await websocket.accept()
    raise WebSocketException(1008, "policy says no")


@app.websocket("/ws/params/{room}")
async def ws_params(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"room": websocket.path_params["room"], "db": websocket.state.db})
    await websocket.close()


@app.websocket("/ws/extensions")
async def ws_extensions(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json(sorted(websocket.scope.get("extensions") or {}))
    await websocket.close()


@app.websocket("/ws/crash")
async def ws_crash(websocket: WebSocket) -> None:
    await websocket.accept()
    raise RuntimeError("websocket handler bug")
