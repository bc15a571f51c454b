"""User code type-checks under `mypy --strict`: the lazy re-exports are visible to type
checkers, decorators keep handler types, and Flask apps fit the WSGI bridge.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import dartle.web

ROOT = Path(__file__).resolve().parents[2]

USER_CODE = '''
from typing import Annotated

from flask import Flask
from pydantic import BaseModel

from dartle import App, Depends, Header, JSONResponse, Query, Request, StaticFiles, TestClient
from dartle.asgi.wsgi import WSGIMiddleware

app = App()
flask_app = Flask(__name__)
app.mount("/flask", WSGIMiddleware(flask_app))


class Item(BaseModel):
    name: str


def limit() -> int:
    return 10


@app.get("/items/{item_id}")
async def read(item_id: int, request: Request, n: Annotated[int, Depends(limit)],
               q: int = Query(1, ge=0), token: str | None = Header(None)) -> Item:
    return Item(name=f"{item_id}-{n}-{request.url.path}")


@app.post("/raw")
async def raw(request: Request, n: int = Depends(limit)) -> JSONResponse:
    return JSONResponse(await request.json())


def check() -> None:
    reveal_type(read)
    assert isinstance(StaticFiles, type)
    with TestClient(app) as client:
        assert client.get("/items/1").json() == {"name": "1-10-/items/1"}
'''


def test_user_code_passes_mypy_strict(tmp_path: Path) -> None:
    source = tmp_path / "user_app.py"
    source.write_text(USER_CODE)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"),
         str(source)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    output = done.stdout + done.stderr
    # The one note is reveal_type's: the handler keeps its real signature through @app.get.
    revealed = ('Revealed type is "def (item_id: int, request: dartle.web.requests.Request, '
                'n: int, q: int =, token: str | None =) -> typing.Coroutine[Any, Any, user_app.Item]"')
    assert revealed in output, output
    errors = [line for line in output.splitlines() if ": error:" in line]
    assert errors == [], output


@pytest.mark.parametrize("module", ["dartle.web"])
def test_type_checking_imports_match_the_lazy_exports(module: str) -> None:
    tree = ast.parse(Path(dartle.web.__file__).read_text())
    seen: dict[str, str] = {}
    modules = {"_params": "dartle.web.params", "_di": "dartle.web.di"}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.Assign):  # Query = _params.marker(_params.Query)
                    name = stmt.targets[0].id  # type: ignore[attr-defined]
                    target = stmt.value.args[0]  # type: ignore[attr-defined]
                    assert target.attr == name
                    seen[name] = modules[target.value.id]
                    continue
                assert isinstance(stmt, ast.ImportFrom) and stmt.module
                for alias in stmt.names:
                    if alias.name.startswith("_") or (alias.asname and alias.asname.startswith("_")):
                        continue
                    assert alias.asname == alias.name  # an explicit re-export
                    seen[alias.name] = f"{stmt.module}"
    assert seen == dartle.web._EXPORTS
