"""Every Python example in docs/framework.md runs, and its static GET routes answer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dartle.web.app import App
from dartle.web.routes import Route
from dartle.web.testing import TestClient

DOC = Path(__file__).resolve().parents[2] / "docs" / "framework.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_guide_has_examples() -> None:
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(index: int) -> None:
    namespace: dict[str, object] = {"__name__": f"framework_example_{index}"}
    exec(compile(BLOCKS[index], f"{DOC.name}[{index}]", "exec"), namespace)
    app = namespace.get("app")
    if not isinstance(app, App):
        return
    with TestClient(app, raise_server_exceptions=True) as client:
        for route in app.routes:
            if isinstance(route, Route) and "GET" in route.methods and route.pattern.is_static:
                response = client.get(route.path)
                assert response.status_code < 500, (route.path, response.text)
