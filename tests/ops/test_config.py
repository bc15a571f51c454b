"""Configuration sources: flags > DARTLE_* variables > a TOML file > defaults, by `dartle config`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.ops.support import OPS_APP, fresh_get, serving_pids, wait_log
from tests.support.servers import ROOT, run_command


def dartle_in(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m dartle ARGS` in `cwd`, with no DARTLE_* variables but the given ones."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("DARTLE_")}
    base.update(PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-m", "dartle", *args], cwd=cwd, env=base,
                          capture_output=True, text=True, timeout=60, check=False)


def effective(cwd: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = dartle_in(cwd, "config", "--json", *args, env=env)
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


PYPROJECT = """
[project]
name = "someapp"

[tool.dartle]
{body}
"""

# (id, pyproject [tool.dartle] body, --config file body or None, env, flags, option, value, source)
CASES = [
    ("default", "", None, {}, [], "port", 8000, "default"),
    ("pyproject", "port = 9001", None, {}, [], "port", 9001, "file pyproject.toml [tool.dartle]"),
    ("env over file", "port = 9001", None, {"DARTLE_PORT": "9002"}, [], "port", 9002, "env DARTLE_PORT"),
    ("flag over env", "port = 9001", None, {"DARTLE_PORT": "9002"}, ["--port", "9003"], "port", 9003,
     "flag --port"),
    ("--config replaces pyproject", "workers = 3", "port = 9004", {}, ["--config", "{file}"], "workers",
     None, "default"),
    ("--config values", "port = 9001", "port = 9004", {}, ["--config", "{file}"], "port", 9004,
     "file {file}"),
    ("$DARTLE_CONFIG", "", "port = 9005", {"DARTLE_CONFIG": "{file}"}, [], "port", 9005, "file {file}"),
    ("kebab-case key", "timeout-keep-alive = 2.5", None, {}, [], "timeout_keep_alive", 2.5,
     "file pyproject.toml [tool.dartle]"),
    ("int for a float", "timeout_graceful_shutdown = 3", None, {}, [], "timeout_graceful_shutdown", 3.0,
     "file pyproject.toml [tool.dartle]"),
    ("env bool", "", None, {"DARTLE_ACCESS_LOG": "off"}, [], "access_log", False, "env DARTLE_ACCESS_LOG"),
    ("flag bool over file", "access-log = false", None, {}, ["--access-log"], "access_log", True,
     "flag --access-log"),
    ("env list", "", None, {"DARTLE_RELOAD_DIR": "src, lib"}, [], "reload_dir", ["src", "lib"],
     "env DARTLE_RELOAD_DIR"),
    ("flag list", "reload-dir = ['x']", None, {}, ["--reload-dir", "a", "--reload-dir", "b"], "reload_dir",
     ["a", "b"], "flag --reload-dir"),
    ("env size", "", None, {"DARTLE_MAX_WORKER_MEMORY": "512M"}, [], "max_worker_memory", 512 * 2**20,
     "env DARTLE_MAX_WORKER_MEMORY"),
    ("file size", 'max-worker-memory = "1.5GB"', None, {}, [], "max_worker_memory", 1_500_000_000,
     "file pyproject.toml [tool.dartle]"),
    ("flag size", "", None, {}, ["--max-worker-memory", "64MiB"], "max_worker_memory", 64 * 2**20,
     "flag --max-worker-memory"),
    ("env empty means unset", "limit-concurrency = 5", None, {"DARTLE_LIMIT_CONCURRENCY": ""}, [],
     "limit_concurrency", None, "env DARTLE_LIMIT_CONCURRENCY"),
    ("app from file", 'app = "main:app"', None, {}, [], "app", "main:app",
     "file pyproject.toml [tool.dartle]"),
    ("app argument", 'app = "main:app"', None, {"DARTLE_APP": "env:app"}, ["cli:app"], "app", "cli:app",
     "flag APP"),
    ("flag alias", "", None, {}, ["--limit-max-requests", "7"], "max_requests", 7, "flag --max-requests"),
]


@pytest.mark.parametrize(("pyproject", "config_file", "env", "flags", "option", "value", "source"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_precedence(tmp_path: Path, pyproject: str, config_file: str | None, env: dict[str, str],
                    flags: list[str], option: str, value: Any, source: str) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT.format(body=pyproject))
    file = tmp_path / "dartle.toml"
    if config_file is not None:
        file.write_text(config_file + "\n")
    env = {k: v.format(file=file) for k, v in env.items()}
    flags = [f.format(file=file) for f in flags]
    document = effective(tmp_path, *flags, env=env)
    assert document["options"][option] == {"value": value, "source": source.format(file=file)}


ERRORS = [
    ("unknown file key", "wrokers = 2", None, {}, [],
     "pyproject.toml [tool.dartle]: unknown option 'wrokers' (did you mean 'workers'?)"),
    ("file wrong type", 'port = "80"', None, {}, [],
     "pyproject.toml [tool.dartle]: port must be a whole number, not '80'"),
    ("file list of ints", "reload-include = [1]", None, {}, [],
     "reload-include must be a list of strings, not [1]"),
    ("env not a number", "", None, {"DARTLE_PORT": "eighty"}, [],
     "$DARTLE_PORT: 'eighty' is not a whole number"),
    ("env not a bool", "", None, {"DARTLE_RELOAD": "maybe"}, [], "$DARTLE_RELOAD: 'maybe' is not a boolean"),
    ("env bad size", "", None, {"DARTLE_MAX_WORKER_MEMORY": "lots"}, [],
     "$DARTLE_MAX_WORKER_MEMORY: 'lots' is not a size"),
    ("env out of range", "", None, {"DARTLE_PORT": "70000"}, [],
     "port 70000 is not between 0 and 65535 (from env DARTLE_PORT)"),
    ("env bad choice", "", None, {"DARTLE_LOOP": "tokio"}, [],
     "loop must be auto, uvloop or asyncio, not 'tokio' (from env DARTLE_LOOP)"),
    ("file out of range", "workers = 0", None, {}, [],
     "workers must be at least 1, not 0 (from file pyproject.toml [tool.dartle])"),
    ("flag out of range", "", None, {}, ["--timeout-keep-alive", "-1"],
     "timeout_keep_alive must be positive, not -1.0 (from flag --timeout-keep-alive)"),
    ("tiny memory limit", "max-worker-memory = 512", None, {}, [],
     "max_worker_memory 512 bytes is under 1 MiB; give a unit, e.g. 512M"),
    ("invalid TOML", "port = ", None, {}, [], "is not valid TOML"),
    ("missing --config", "", None, {}, ["--config", "/nonexistent/dartle.toml"],
     "cannot read config file '/nonexistent/dartle.toml'"),
    ("config key in a file", "", "config = 'other.toml'", {}, ["--config", "{file}"],
     "'config' names the config file and cannot be set in one"),
]


@pytest.mark.parametrize(("pyproject", "config_file", "env", "flags", "message"),
                         [case[1:] for case in ERRORS], ids=[case[0] for case in ERRORS])
def test_errors_name_the_option_and_its_source(tmp_path: Path, pyproject: str, config_file: str | None,
                                               env: dict[str, str], flags: list[str], message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT.format(body=pyproject))
    file = tmp_path / "dartle.toml"
    if config_file is not None:
        file.write_text(config_file + "\n")
    flags = [f.format(file=file) for f in flags]
    for command in ("config", "run"):
        result = dartle_in(tmp_path, command, *flags, env=env)
        assert result.returncode == 1, result.stdout
        assert message in result.stderr
        assert result.stderr.startswith("Error: ") and len(result.stderr.strip().splitlines()) == 1


def test_unknown_variable_is_a_warning_naming_it(tmp_path: Path) -> None:
    document = effective(tmp_path, env={"DARTLE_WORKER": "2"})
    assert document["warnings"] == ["ignoring $DARTLE_WORKER: not a dartle option (did you mean 'workers'?)"]
    assert document["options"]["workers"]["value"] is None


def test_test_suite_switches_are_not_warned_about(tmp_path: Path) -> None:
    document = effective(tmp_path, env={"DARTLE_HYPOTHESIS_SCALE": "3", "DARTLE_SOAK": "60",
                                        "DARTLE_REQUIRE_SERVICES": "1"})
    assert document["warnings"] == []


def test_uvicorn_flag_names_are_aliases(tmp_path: Path) -> None:
    document = effective(tmp_path, "--limit-max-requests-jitter", "5", "--h11-max-incomplete-event-size",
                         "4096", "--limit-max-requests", "100")
    options = document["options"]
    assert options["max_requests_jitter"]["value"] == 5
    assert options["max_header_size"]["value"] == 4096
    assert options["max_requests"]["value"] == 100


def test_text_output_shows_value_and_source(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT.format(body='app = "main:app"\nworkers = 4'))
    result = dartle_in(tmp_path, "config", "--port", "9100", env={"DARTLE_HOST": "0.0.0.0"})
    assert result.returncode == 0, result.stderr
    lines = {line.split("#")[0].strip(): line.rsplit("# ", 1)[1] for line in result.stdout.splitlines()
             if " = " in line}
    assert lines['app = "main:app"'] == "file pyproject.toml [tool.dartle]"
    assert lines["workers = 4"] == "file pyproject.toml [tool.dartle]"
    assert lines['host = "0.0.0.0"'] == "env DARTLE_HOST"
    assert lines["port = 9100"] == "flag --port"
    assert lines["backlog = 2048"] == "default"
    assert "# uds is unset" in result.stdout


def test_run_takes_everything_from_the_environment() -> None:
    env = {"DARTLE_APP": OPS_APP, "DARTLE_HOST": "127.0.0.1", "DARTLE_PORT": "0", "DARTLE_WORKERS": "2",
           "DARTLE_ACCESS_LOG": "false", "PYTHONPATH": str(ROOT)}
    with run_command([sys.executable, "-m", "dartle", "run"], env=env) as server:
        workers = serving_pids(wait_log(server, rb"(?s)serving.*serving"))
        assert len(workers) == 2
        assert int(fresh_get(server.url).text) in workers
        assert b'"GET /pid' not in server.read_log()


def test_run_reads_a_config_file(tmp_path: Path) -> None:
    config = tmp_path / "prod.toml"
    config.write_text(textwrap.dedent(f"""
        app = "{OPS_APP}"
        host = "127.0.0.1"
        port = 0
        server-header = false
    """))
    with run_command([sys.executable, "-m", "dartle", "run", "--config", str(config)]) as server:
        response = fresh_get(server.url)
        assert response.status_code == 200
        assert "server" not in response.headers
