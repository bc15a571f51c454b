"""The index page, and the list of pages it links (the startup log prints the same list)."""

from __future__ import annotations

from html import escape

from dartle.web import HTMLResponse, Request, Router

# (path, what it shows): one list for the index page and the startup log.
PAGES: list[tuple[str, str]] = [
    ("/", "this index"),
    ("/items", "a typed CRUD API: GET, POST /items; GET, PUT, PATCH, DELETE /items/{id}"),
    ("/docs", "the API in Swagger UI (try the requests there)"),
    ("/redoc", "the API in ReDoc"),
    ("/openapi.json", "the OpenAPI 3.1 document"),
    ("/stream", "a streamed response: a line every 100 ms"),
    ("/clock", "server-sent events: the time every second"),
    ("/chat/", "a WebSocket chat: open it in two tabs"),
    ("/flask/", "a Flask app, mounted through the WSGI bridge"),
]

router = Router()

_STYLE = """body{font:16px system-ui;max-width:48rem;margin:2rem auto;padding:0 1rem;line-height:1.45}
code,pre{background:#f3f3f3;padding:.1rem .3rem}pre{padding:.6rem;overflow-x:auto}
li{margin:.3rem 0}"""


@router.get("/", include_in_schema=False)
async def home(request: Request) -> HTMLResponse:
    base = str(request.base_url).rstrip("/")
    links = "\n".join(
        f'<li><a href="{escape(path)}">{escape(path)}</a>: {escape(text)}</li>'
        for path, text in PAGES[1:]
    )
    page = f"""<!doctype html>
<meta charset="utf-8"><title>dartle showcase</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{_STYLE}</style>
<h1>dartle showcase</h1>
<p>The dartle framework, served by the dartle server: one process, one port.</p>
<ul>
{links}
</ul>
<p>Server clock (<code>/clock</code>, over server-sent events): <code id="clock">...</code></p>
<p>The API from a terminal:</p>
<pre>curl {escape(base)}/items
curl -X POST {escape(base)}/items -H 'content-type: application/json' -d '{{"name": "mug", "price": 8}}'
curl -X PATCH {escape(base)}/items/1 -H 'content-type: application/json' -d '{{"price": 30}}'
curl -N {escape(base)}/stream?count=5</pre>
<script>
new EventSource("/clock").onmessage = (e) => document.getElementById("clock").textContent = e.data;
</script>
"""
    return HTMLResponse(page)
