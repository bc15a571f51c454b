"""Swagger UI and ReDoc pages load their bundled assets over loopback, and render in a
headless Chromium that cannot reach anything else (no CDN, no internet)."""

from __future__ import annotations

import hashlib
import re
import subprocess
import tempfile
from collections.abc import Iterator

import httpx
import pytest

from dartle.web.openapi.pages import STATIC_DIR
from tests.support.servers import ServerProcess, run_server
from tests.support.services import require_binary


@pytest.fixture(scope="module", params=("uvicorn", "dartle"))
def typed_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with run_server("tests.web.apps.typed_api:app", kind=request.param) as server:
        yield server


def _references(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', page)


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", {"swagger-ui.css", "favicon-32x32.png", "swagger-ui-bundle.js"}),
        ("/redoc", {"favicon-32x32.png", "redoc.standalone.js"}),
    ],
)
def test_pages_reference_only_bundled_assets(
    typed_server: ServerProcess, page: str, assets: set[str]
) -> None:
    with httpx.Client(base_url=typed_server.url, timeout=10) as client:
        r = client.get(page)
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        references = _references(r.text)
        # Nothing from another origin: every script, style and icon is ours.
        assert all(ref.startswith("/docs/assets/") for ref in references), references
        assert {ref.rsplit("/", 1)[1] for ref in references} == assets
        assert "/openapi.json" in r.text
        for ref in references:
            asset = client.get(ref)
            assert asset.status_code == 200, ref
            local = (STATIC_DIR / ref.rsplit("/", 1)[1]).read_bytes()
            assert hashlib.sha256(asset.content).digest() == hashlib.sha256(local).digest()
            assert "etag" in asset.headers


def test_asset_content_types_and_licences(typed_server: ServerProcess) -> None:
    with httpx.Client(base_url=typed_server.url + "/docs/assets", timeout=10) as client:
        assert client.get("/swagger-ui-bundle.js").headers["content-type"].startswith("text/javascript")
        assert client.get("/swagger-ui.css").headers["content-type"].startswith("text/css")
        assert "Apache License" in client.get("/swagger-ui.LICENSE.txt").text
        assert "MIT" in client.get("/redoc.LICENSE.txt").text
        versions = client.get("/VERSIONS.txt").text
        assert "swagger-ui-dist 5." in versions
        assert "redoc 2." in versions
        assert client.get("/../pages.py").status_code == 404


def _render(url: str) -> str:
    chromium = require_binary("chromium", "chromium-browser", "google-chrome")
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                f"--user-data-dir={profile}",
                # Every host name but the server's loopback address fails to resolve: a
                # page that needed a CDN would not render.
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                "--virtual-time-budget=15000",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_swagger_ui_renders_offline(typed_server: ServerProcess) -> None:
    dom = _render(typed_server.url + "/docs")
    # Swagger UI fetched /openapi.json and drew the operations and the Authorize button.
    assert 'class="swagger-ui' in dom
    assert "Typed test API" in dom
    assert "read_item_items__item_id__get" in dom
    assert "opblock-tag" in dom
    assert "authorize" in dom
    log = typed_server.wait_for_log(rb"GET /docs/assets/swagger-ui-bundle\.js")
    assert b"GET /openapi.json" in log


def test_redoc_renders_offline(typed_server: ServerProcess) -> None:
    dom = _render(typed_server.url + "/redoc")
    assert "Typed test API" in dom
    assert "Read Item" in dom
    assert "No such item" in dom  # a documented 404 response of read_item
    typed_server.wait_for_log(rb"GET /docs/assets/redoc\.standalone\.js")
