"""--reload: edit a file, see a new worker serve it; a broken edit leaves the old one serving."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from dartle.server.reload import DEFAULT_EXCLUDE, DEFAULT_INCLUDE, ReloadFilter
from tests.ops.support import ENV, fresh_get, mark, wait_log
from tests.server.conftest import new_rid
from tests.support.servers import ROOT, ServerProcess, run_command

APP = '''
VERSION = {version!r}


async def app(scope, receive, send):
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": VERSION.encode()}})
'''


def write_app(path: Path, version: str) -> None:
    path.write_text(APP.format(version=version))


def reload_command(module: str, directory: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "dartle", "run", f"{module}:app", "--app-dir", str(directory),
            "--reload", "--reload-dir", str(directory), "--host", "127.0.0.1", "--port", "0",
            "--lifespan", "off", "--no-access-log", *flags]


def test_edit_reloads_and_a_broken_edit_keeps_the_old_worker(tmp_path: Path) -> None:
    module = f"reload_{uuid.uuid4().hex[:10]}"
    source = tmp_path / f"{module}.py"
    write_app(source, "one")
    with run_command(reload_command(module, tmp_path), env=ENV) as server:
        assert fresh_get(server.url, "/").text == "one"

        since = mark(server)
        write_app(source, "second version")
        wait_log(server, rb"Reload complete", since)
        assert fresh_get(server.url, "/").text == "second version"

        since = mark(server)
        source.write_text("import dartle_no_such_module_for_reload\napp = None\n")
        log = wait_log(server, rb"failed to start .*; waiting for a file change", since)
        assert b"dartle_no_such_module_for_reload" in log  # the import error is shown
        assert server.proc.poll() is None
        assert fresh_get(server.url, "/").text == "second version"  # the old worker serves on

        since = mark(server)
        write_app(source, "third, fixed")
        wait_log(server, rb"Worker \[\d+\] serving", since)
        assert fresh_get(server.url, "/").text == "third, fixed"


def test_starting_with_a_broken_app_waits_for_the_fix(tmp_path: Path) -> None:
    module = f"reload_{uuid.uuid4().hex[:10]}"
    source = tmp_path / f"{module}.py"
    source.write_text("raise RuntimeError('not yet (marker-4471)')\n")
    proc = subprocess.Popen(reload_command(module, tmp_path), cwd=ROOT, env=dict(os.environ, **ENV),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    server = ServerProcess(proc, "")
    try:
        log = server.wait_for_log(rb"(?s)marker-4471.*waiting for a file change", timeout=30)
        assert b"running on" not in log
        write_app(source, "fixed")
        log = server.wait_for_log(rb"running on (http://\S+)", timeout=30)
        url = log.split(b"running on ")[1].split()[0].decode()
        assert fresh_get(url, "/").text == "fixed"
    finally:
        assert server.stop() == 0


def test_include_and_exclude_patterns(tmp_path: Path) -> None:
    module = f"reload_{uuid.uuid4().hex[:10]}"
    write_app(tmp_path / f"{module}.py", "one")
    (tmp_path / "skip").mkdir()
    flags = ("--reload-include", "*.html", "--reload-exclude", "skip")
    with run_command(reload_command(module, tmp_path, *flags), env=ENV) as server:
        since = mark(server)
        (tmp_path / "skip" / "ignored.html").write_text("no reload for me")
        (tmp_path / "notes.txt").write_text("not watched")
        (tmp_path / f"page-{new_rid()}.html").write_text("<p>watched</p>")
        log = wait_log(server, rb"Reload complete", since)
        detected = [line for line in log.splitlines() if b"Detected changes" in line]
        assert detected and all(b"page-" in line for line in detected)
        assert not any(b"ignored.html" in line or b"notes.txt" in line for line in detected)


ROOT_DIR = "/srv/app"
FILTER_CASES = [
    # (relative path, extra include, extra exclude, reloads?)
    ("main.py", (), (), True),
    ("pkg/module.py", (), (), True),
    ("pkg/__pycache__/module.cpython-311.pyc", (), (), False),
    (".venv/lib/site.py", (), (), False),
    (".hidden.py", (), (), False),
    ("main.py.swp", (), (), False),
    ("templates/index.html", (), (), False),
    ("templates/index.html", ("*.html",), (), True),
    ("templates/index.html", ("templates/*",), (), True),
    ("tests/test_main.py", (), ("tests",), False),
    ("pkg/generated_pb2.py", (), ("*_pb2.py",), False),
    ("pkg/generated_pb2.py", (), ("pkg/gen*",), False),
    ("main.py", ("*.py",), ("main.py",), False),  # exclusion wins
]


@pytest.mark.parametrize(("rel", "include", "exclude", "expected"), FILTER_CASES)
def test_reload_filter(rel: str, include: tuple[str, ...], exclude: tuple[str, ...], expected: bool) -> None:
    watch = ReloadFilter([ROOT_DIR], [*DEFAULT_INCLUDE, *include], [*DEFAULT_EXCLUDE, *exclude])
    assert watch(None, f"{ROOT_DIR}/{rel}") is expected
