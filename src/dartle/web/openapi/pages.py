"""The documentation routes: the two JSON documents, Swagger UI, ReDoc and their assets.

The pages load Swagger UI and ReDoc from files shipped inside the package
(`static/`, refreshed by `scripts/update-docs-assets.sh`), never from a CDN, so the
docs work offline and in air-gapped networks; Swagger UI's online validator badge is
turned off for the same reason. Every URL in a page starts with the request's
`root_path`, so the docs keep working behind a proxy prefix or inside a mount.

The JSON documents are built on first request and kept as bytes (one copy per
root_path, which the OpenAPI document's `servers` names when the app lists none).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic_core import to_json

from dartle.web.requests import Request
from dartle.web.responses import HTMLResponse, Response
from dartle.web.routes import Route
from dartle.web.staticfiles import StaticFiles

if TYPE_CHECKING:
    from dartle.web.app import App

__all__ = ["STATIC_DIR", "install_docs", "redoc_html", "swagger_ui_html"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
_MAX_CACHED_ROOTS = 16


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element (no `</script>` or `<!--` can appear)."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def swagger_ui_html(
    title: str, openapi_url: str, assets_url: str, parameters: dict[str, Any] | None = None
) -> str:
    """The Swagger UI page for the document at `openapi_url`."""
    config: dict[str, Any] = {
        "url": openapi_url,
        "dom_id": "#swagger-ui",
        "layout": "BaseLayout",
        "deepLinking": True,
        "showExtensions": True,
        "showCommonExtensions": True,
        "validatorUrl": None,
        **(parameters or {}),
    }
    assets = html.escape(assets_url, quote=True)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} - Swagger UI</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script>
const config = {_script_json(config)};
config.presets = [SwaggerUIBundle.presets.apis];
config.oauth2RedirectUrl = window.location.origin + {_script_json(assets_url + "/oauth2-redirect.html")};
window.ui = SwaggerUIBundle(config);
</script>
</body>
</html>
"""


def redoc_html(title: str, openapi_url: str, assets_url: str) -> str:
    """The ReDoc page for the document at `openapi_url`."""
    assets = html.escape(assets_url, quote=True)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} - ReDoc</title>
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
<style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
<redoc spec-url="{html.escape(openapi_url, quote=True)}"></redoc>
<script src="{assets}/redoc.standalone.js"></script>
</body>
</html>
"""


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


class _DocumentEndpoint:
    """Serves one JSON document, rendered once per root_path."""

    def __init__(self, app: App, kind: str) -> None:
        self.app = app
        self.kind = kind
        self.cache: dict[str, bytes] = {}

    async def __call__(self, request: Request) -> Response:
        root = _root(request)
        body = self.cache.get(root)
        if body is None:
            document = self.app.openapi() if self.kind == "openapi" else self.app.asyncapi()
            if root and not document.get("servers") and self.kind == "openapi":
                document = {**document, "servers": [{"url": root}]}
            body = to_json(document)
            if len(self.cache) >= _MAX_CACHED_ROOTS:
                self.cache.clear()
            self.cache[root] = body
        return Response(body, media_type="application/json")


def install_docs(app: App) -> None:
    """Add the documentation routes `app`'s settings ask for.

    They are not in the document, and the app's own dependencies (an API key check...)
    do not apply to them: the docs must load for the reader to authorize at all.
    """
    router = app.router
    assert app.openapi_url is not None
    openapi_url = app.openapi_url

    def add(path: str, endpoint: Any, name: str) -> None:
        router.routes.append(Route(path, endpoint, name=name, include_in_schema=False))

    add(openapi_url, _DocumentEndpoint(app, "openapi"), "openapi")
    if app.asyncapi_url is not None:
        add(app.asyncapi_url, _DocumentEndpoint(app, "asyncapi"), "asyncapi")
    assets_url = app.docs_assets_url.rstrip("/")
    if app.docs_url is not None or app.redoc_url is not None:
        router.mount(assets_url, StaticFiles(directory=STATIC_DIR), name="docs-assets")

    if app.docs_url is not None:

        async def swagger_ui(request: Request) -> HTMLResponse:
            root = _root(request)
            page = swagger_ui_html(
                app.title, root + openapi_url, root + assets_url, app.swagger_ui_parameters
            )
            return HTMLResponse(page)

        add(app.docs_url, swagger_ui, "swagger_ui")

    if app.redoc_url is not None:

        async def redoc(request: Request) -> HTMLResponse:
            root = _root(request)
            return HTMLResponse(redoc_html(app.title, root + openapi_url, root + assets_url))

        add(app.redoc_url, redoc, "redoc")
