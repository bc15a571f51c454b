"""API documentation: the OpenAPI 3.1 and AsyncAPI 3.0 documents and the docs pages.

`document.build_openapi(app)` and `asyncapi.build_asyncapi(app)` read the routes'
compiled signatures; `pages.install_docs(app)` adds the routes serving them with
Swagger UI and ReDoc, whose assets are bundled in `static/`.
"""

from __future__ import annotations

from dartle.web.openapi.asyncapi import build_asyncapi
from dartle.web.openapi.document import build_openapi
from dartle.web.openapi.pages import install_docs, redoc_html, swagger_ui_html

__all__ = ["build_asyncapi", "build_openapi", "install_docs", "redoc_html", "swagger_ui_html"]
