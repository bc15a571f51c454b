"""Hello-world plaintext apps: dartle and the equivalent Starlette app (for comparisons)."""

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse as StarlettePlainText
from starlette.routing import Route as StarletteRoute

from dartle.web.app import App
from dartle.web.responses import PlainTextResponse

app = App()


@app.get("/")
async def hello(request):
    return PlainTextResponse("Hello, world!")


async def _starlette_hello(request):
    return StarlettePlainText("Hello, world!")


starlette_app = Starlette(routes=[StarletteRoute("/", _starlette_hello)])


async def raw_app(scope, receive, send):  # type: ignore[no-untyped-def]
    """The floor: a bare ASGI app with the same response."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", b"13"), (b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": b"Hello, world!"})
