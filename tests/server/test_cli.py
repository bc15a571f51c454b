"""`dartle run` / `python -m dartle run`: app loading, errors, flags, dartle.run()."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.conftest import RECORDER, SERVER_KIND, Harness, dartle_only, new_rid
from tests.support.servers import ROOT, run_command

pytestmark = dartle_only

DARTLE_SCRIPT = str(Path(sys.executable).with_name("dartle"))
ENV = {"PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dartle", *args],
        cwd=cwd,
        env=dict(os.environ, **ENV),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


FLAGS = [
    "--host",
    "--port",
    "--uds",
    "--fd",
    "--factory",
    "--app-dir",
    "--loop",
    "--lifespan",
    "--root-path",
    "--log-level",
    "--log-config",
    "--access-log",
    "--no-access-log",
    "--proxy-headers",
    "--no-proxy-headers",
    "--forwarded-allow-ips",
    "--server-header",
    "--no-server-header",
    "--date-header",
    "--no-date-header",
    "--timeout-keep-alive",
    "--limit-concurrency",
    "--backlog",
    "--max-header-size",
    "--h11-max-header-size",
    "--h11-max-incomplete-event-size",
    "--max-body-size",
    "--timeout-graceful-shutdown",
    "--timeout-header",
]


def test_help_lists_every_flag() -> None:
    result = run_cli("run", "--help")
    assert result.returncode == 0, result.stderr
    missing = [flag for flag in FLAGS if flag not in result.stdout]
    assert missing == []
    for choice in ("auto", "uvloop", "asyncio", "on", "off"):
        assert choice in result.stdout


BAD_TARGETS = {
    "missing module": ("dartle_no_such_module:app", "dartle_no_such_module"),
    "missing attribute": ("tests.apps.recorder:no_such_attribute", "no_such_attribute"),
    "not callable": ("tests.apps.misc:not_callable", "not_callable"),
    "import fails inside": ("tests.apps.broken_import:app", "dartle_test_missing_dependency"),
    "no colon": ("tests.apps.recorder", "tests.apps.recorder"),
    "wrong signature": ("tests.apps.misc:make_app", "make_app"),
}


@pytest.mark.parametrize(("target", "named"), list(BAD_TARGETS.values()), ids=list(BAD_TARGETS))
def test_bad_app_target_is_a_one_line_error(target: str, named: str) -> None:
    result = run_cli("run", target, "--port", "0")
    assert result.returncode == 1
    output = (result.stdout + result.stderr).strip().splitlines()
    assert len(output) == 1, output
    assert named in output[0]
    assert "Traceback" not in output[0]


def _serves(process_url: str, path: str = "/echo") -> httpx.Response:
    return httpx.get(process_url + path, headers={"x-rid": new_rid()}, timeout=10)


def test_console_script() -> None:
    command = [DARTLE_SCRIPT, "run", RECORDER, "--host", "127.0.0.1", "--port", "0"]
    with run_command(command) as process:
        assert process.url.startswith("http://127.0.0.1:")
        assert _serves(process.url).status_code == 200


def test_factory(start_server: Any) -> None:
    srv: Harness = start_server("--factory", target="tests.apps.misc:make_app")
    assert srv.http.get("/").content == b"made by factory"


def test_app_dir(tmp_path: Path) -> None:
    module = f"appdir_{new_rid().replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(
        textwrap.dedent(
            """
            async def app(scope, receive, send):
                if scope["type"] != "http":
                    return
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": b"from app-dir"})
            """
        )
    )
    command = [
        sys.executable,
        "-m",
        "dartle",
        "run",
        f"{module}:app",
        "--app-dir",
        str(tmp_path),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
    ]
    with run_command(command) as process:
        assert _serves(process.url, "/").content == b"from app-dir"


def test_programmatic_run() -> None:
    code = textwrap.dedent(
        """
        import dartle
        from tests.apps.recorder import app

        dartle.run(app, host="127.0.0.1", port=0, lifespan="on", access_log=False)
        """
    )
    with run_command([sys.executable, "-c", code], env=ENV) as process:
        assert _serves(process.url).status_code == 200
        assert httpx.get(process.url + "/state", timeout=10).json()["state"]["greeting"] == "hello"


def test_fd(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    command = [sys.executable, "-m", "dartle", "run", RECORDER, "--fd", str(listener.fileno())]
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env=dict(os.environ, **ENV),
        pass_fds=[listener.fileno()],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    listener.close()  # the server holds its own copy
    try:
        # The socket already listens, so the request waits in its backlog until the server runs.
        response = httpx.get(f"http://127.0.0.1:{port}/scope", timeout=20)
        assert response.status_code == 200
        assert response.json()["server"] == ["127.0.0.1", port]
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode in (0, -15), output


def test_every_flag_together(start_server: Any, tmp_path: Path) -> None:
    srv = start_server(
        "--loop",
        "asyncio",
        "--lifespan",
        "on",
        "--root-path",
        "",
        "--log-level",
        "debug",
        "--access-log",
        "--proxy-headers",
        "--forwarded-allow-ips",
        "127.0.0.1",
        "--server-header",
        "--date-header",
        "--timeout-keep-alive",
        "3",
        "--limit-concurrency",
        "100",
        "--backlog",
        "64",
        "--max-header-size",
        "16384",
        "--max-body-size",
        "1000000",
        "--timeout-graceful-shutdown",
        "5",
        "--timeout-header",
        "5",
    )
    assert srv.http.post("/echo", content=b"abc", headers={"x-rid": new_rid()}).content == b"abc"


def test_log_config_file(start_server: Any, tmp_path: Path) -> None:
    prefix = "dartle" if SERVER_KIND == "dartle" else "uvicorn"
    config = tmp_path / "logging.json"
    config.write_text(
        f"""{{
          "version": 1,
          "disable_existing_loggers": false,
          "formatters": {{"tagged": {{"format": "TAGGED-%(name)s %(message)s"}}}},
          "handlers": {{"out": {{"class": "logging.StreamHandler", "formatter": "tagged",
                                 "stream": "ext://sys.stdout"}}}},
          "loggers": {{
            "{prefix}.error": {{"handlers": ["out"], "level": "INFO", "propagate": false}},
            "{prefix}.access": {{"handlers": ["out"], "level": "INFO", "propagate": false}}
          }}
        }}"""
    )
    srv = start_server("--log-config", str(config))
    assert f"TAGGED-{prefix}.error" in srv.log_since(0)
    mark = srv.log_mark()
    srv.http.get("/echo?tagged=1", headers={"x-rid": new_rid()})
    srv.wait_for_log(rf"TAGGED-{prefix}\.access .*GET /echo\?tagged=1", mark)
