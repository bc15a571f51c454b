"""Every ```python block of README.md and docs/*.md runs, and the apps they build answer.

The convention is in tests/docs/markdown.py and docs/contributing.md: a page's blocks run
in order, from the repository root, each in a fresh namespace unless marked `continue`
(`file NAME.py` makes one importable by later blocks, `skip REASON` leaves one out).
A sample runs as `__main__`, but `dartle.run(app, **options)` only checks its options
(as `dartle.run` would, before serving) and returns: a docs test never serves forever.
A block's own `assert`s are the main check. When a namespace is complete, its
`test_*` functions without parameters are called (a block showing a test file runs its
tests), and if it holds an `app`, every static GET route of a dartle App (or `/` of any
other ASGI app) must answer without a 5xx. Tracebacks point at the Markdown file and line.
"""

from __future__ import annotations

import inspect
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import dartle
from dartle.config import Config
from dartle.web.app import App
from dartle.web.routes import Route
from dartle.web.testing import TestClient
from tests.docs.markdown import ROOT, all_blocks, blocks, python_pages

PAGES = python_pages()
MARKERS = {"continue", "file", "skip"}


def test_markers_are_well_formed() -> None:
    assert len(PAGES) >= 8
    for block in all_blocks():
        if block.marker is None:
            continue
        assert block.marker in MARKERS, f"{block.label}: unknown docs-test marker {block.marker!r}"
        assert block.lang in {"python", "py"}, f"{block.label}: docs-test markers are for python blocks"
        if block.marker == "skip":
            assert block.reason, f"{block.label}: a skip needs a reason"
        if block.marker == "file":
            assert block.reason.endswith(".py") and block.reason[:-3].isidentifier(), (
                f"{block.label}: 'file' takes a module file name such as main.py"
            )


# Starlette's own TestClient (in the FastAPI comparisons) warns about its httpx use.
@pytest.mark.filterwarnings("ignore:Using .httpx. with .starlette.testclient.")
@pytest.mark.parametrize("page", PAGES, ids=[str(page.relative_to(ROOT)) for page in PAGES])
def test_page_samples_run(page: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr(dartle, "run", _check_run_options)
    modules: list[str] = []
    namespace: dict[str, Any] | None = None
    try:
        for block in blocks(page):
            if block.lang not in {"python", "py"} or block.marker == "skip":
                continue
            if block.marker != "continue" or namespace is None:
                if namespace is not None:
                    _finish(namespace)
                namespace = _fresh(block.reason if block.marker == "file" else None, modules)
            # Padding makes a traceback's line numbers the Markdown file's.
            source = "\n" * (block.line) + block.code
            exec(compile(source, str(block.page), "exec"), namespace)
        if namespace is not None:
            _finish(namespace)
    finally:
        for name in modules:
            sys.modules.pop(name, None)


def _fresh(filename: str | None, modules: list[str]) -> dict[str, Any]:
    """A new namespace; for `file NAME.py`, the namespace of a new module NAME."""
    if filename is None:
        return {"__name__": "__main__"}
    name = filename[:-3]
    assert name not in sys.modules or name in modules, f"a docs sample would shadow the module {name!r}"
    module = types.ModuleType(name)
    module.__file__ = filename
    sys.modules[name] = module
    modules.append(name)
    return module.__dict__


def _finish(namespace: dict[str, Any]) -> None:
    """Run the namespace's tests, then ask its app for its static pages."""
    for name, value in list(namespace.items()):
        if name.startswith("test_") and inspect.isfunction(value) and not inspect.signature(value).parameters:
            value()
    app = namespace.get("app")
    if isinstance(app, App):
        _get_static_routes(app)
    elif app is not None and _is_asgi(app):
        response = TestClient(app).get("/")
        assert response.status_code < 500, response.text


def _check_run_options(app: Any, **options: Any) -> None:
    """What `dartle.run` does before it serves: refuse unknown options and bad values."""
    Config.from_options(app, **options)


def _get_static_routes(app: App) -> None:
    with TestClient(app) as client:
        for route in app.routes:
            if isinstance(route, Route) and "GET" in route.methods and route.pattern.is_static:
                # Streamed: an endless event stream is left after its head.
                with client.stream("GET", route.path) as response:
                    assert response.status_code < 500, (route.path, response.read())


def _is_asgi(app: Any) -> bool:
    call = app if inspect.isfunction(app) else type(app).__call__
    return inspect.iscoroutinefunction(call)
