"""The TechEmpower scenarios: the harness starts PostgreSQL once for them, gives its URL to
the servers, checks the answers with the TFB rules, and reports a missing database as a
failure. Skips without PostgreSQL (or asyncpg, jinja2) unless DARTLE_REQUIRE_SERVICES=1.

Run: .venv/bin/pytest benchmarks/tests -q
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks import benchenv, run, servers
from benchmarks.scenarios import SCENARIOS, Stack
from examples.techempower import postgres
from tests.support.services import require_binary, services_required

DEV_PYTHON = Path(sys.executable)
TFB = [name for name, scenario in SCENARIOS.items() if scenario.postgres]


@pytest.fixture(scope="module")
def services() -> Iterator[run.Services]:
    missing = [module for module in ("asyncpg", "jinja2")
               if not _importable(module)] + (["postgresql"] if postgres.bin_dir() is None else [])
    if missing:
        reason = f"{', '.join(missing)} not installed (the techempower example needs them)"
        if services_required():
            pytest.fail(reason + " and DARTLE_REQUIRE_SERVICES=1")
        pytest.skip(reason)
    with contextlib.ExitStack() as exit_stack:
        yield run.Services(exit_stack, None)


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def test_every_techempower_scenario_measures_the_dartle_app(services: run.Services) -> None:
    assert TFB == ["tfb-db", "tfb-queries", "tfb-fortunes", "tfb-updates", "tfb-cached"]
    tools = run.Tools(DEV_PYTHON, require_binary("wrk"), None)
    for name in TFB:
        args = run.parse_args([name, "--duration", "1", "--warmup", "0"])
        scenario = SCENARIOS[name]
        result = run.measure(scenario.stack("dartle"), scenario, args, tools, None, services)
        assert result.failure is None, (name, result.failure, result.log_tail)
        assert result.load is not None and result.load.requests > 0
    assert services.database_url is not None  # one database for all of them


def test_the_fastapi_twin_gives_the_right_answers(services: run.Services) -> None:
    if not benchenv.venv_ready():
        pytest.skip("benchmarks/.venv (FastAPI) is not built from the current requirements"
                    " (make bench)")
    for name in TFB:
        scenario = SCENARIOS[name]
        stack = scenario.stack("fastapi on uvicorn")
        # started() checks the answer with the TFB rules: ServerFailed if it is wrong
        with servers.started(servers.SERVERS[stack.server], benchenv.venv_python(), stack,
                             scenario, None, services.environment(scenario)) as server:
            server.check()


def test_a_wrong_techempower_answer_is_a_failure(services: run.Services) -> None:
    # the hello app answers /fortunes with "Hello, world!": the TFB rules reject it
    scenario = SCENARIOS["tfb-fortunes"]
    stack = Stack("dartle", "dartle", "benchmarks.apps.hello:app")
    env = services.environment(scenario)
    with (pytest.raises(servers.ServerFailed, match="the fortunes page differs"),
          servers.started(servers.SERVERS["dartle"], DEV_PYTHON, stack, scenario, None, env)):
        pass


def test_a_database_that_cannot_start_fails_the_rows() -> None:
    broken = run.Services(contextlib.ExitStack(), None)
    broken.problem = "PostgreSQL: not installed"
    args = run.parse_args(["tfb-db", "--duration", "1", "--warmup", "0"])
    tools = run.Tools(DEV_PYTHON, require_binary("wrk"), None)
    scenario = SCENARIOS["tfb-db"]
    result = run.measure(scenario.stack("dartle"), scenario, args, tools, None, broken)
    assert result.load is None and result.failure == "PostgreSQL: not installed"
