"""Interop fixtures: servers (dartle, uvicorn, hypercorn, granian) run from tests/interop/.venv.

The venv is built when interop tests are collected, before any test's timeout starts
(the first build downloads the frameworks: a minute or two). Without network on a first
run the interop tests skip with the pip error, or fail when DARTLE_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.venv import HERE, ensure_venv
from tests.support.servers import ServerProcess, run_command
from tests.support.services import services_required

_venv: dict[str, object] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any(Path(str(item.fspath)).is_relative_to(HERE) for item in items):
        return
    try:
        _venv["python"] = ensure_venv()
    except (OSError, subprocess.CalledProcessError) as exc:
        _venv["error"] = f"could not build tests/interop/.venv from requirements.txt: {exc}"


@pytest.fixture(scope="session")
def interop_python() -> Path:
    if "python" not in _venv and "error" not in _venv:  # the hook did not run (e.g. --co)
        try:
            _venv["python"] = ensure_venv()
        except (OSError, subprocess.CalledProcessError) as exc:
            _venv["error"] = f"could not build tests/interop/.venv from requirements.txt: {exc}"
    python = _venv.get("python")
    if "error" in _venv:
        message = str(_venv["error"])
        if services_required():
            pytest.fail(message)
        pytest.skip(message)
    assert isinstance(python, Path)
    return python


def server_command(python: Path, kind: str, target: str, *flags: str) -> list[str]:
    """How to start `kind` serving `target` on a free loopback port, from the interop venv."""
    py = str(python)
    if kind == "dartle":
        return [py, "-m", "dartle", "run", target, "--host", "127.0.0.1", "--port", "0", *flags]
    if kind == "uvicorn":
        return [py, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", "0", *flags]
    if kind in ("hypercorn", "granian"):
        return [py, str(HERE / "launch.py"), kind, target, *flags]
    raise ValueError(f"unknown server kind {kind!r}")


@contextlib.contextmanager
def serve(python: Path, kind: str, target: str, *flags: str) -> Iterator[ServerProcess]:
    with run_command(server_command(python, kind, target, *flags)) as process:
        yield process
