"""Fixtures and settings for the robustness suite (docs/robustness.md).

Servers are started as in tests/server (real processes, real sockets); the default app is
tests/apps/robust_app.py, the recorder plus fault and soak endpoints.

Hypothesis runs with deadlines off and a bounded number of examples. With CI=true it is
derandomized (the same examples every run, no example database), so a red CI run can be
replayed; locally it explores new examples each run and replays failures from .hypothesis/.
DARTLE_HYPOTHESIS_SCALE multiplies every example budget (e.g. 10 for a long local run).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tests.server.conftest import (  # noqa: F401 - fixtures used by this package's tests
    LOOPS,
    SERVER_KIND,
    Harness,
    loop,
    serve,
    start_server,
)

ROBUST_APP = "tests.apps.robust_app:app"

settings.register_profile(
    "dartle-ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "dartle-dev",
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("dartle-ci" if os.environ.get("CI", "").lower() == "true" else "dartle-dev")


def examples(count: int) -> int:
    """An example budget, scaled by DARTLE_HYPOTHESIS_SCALE (default 1)."""
    return max(1, int(count * float(os.environ.get("DARTLE_HYPOTHESIS_SCALE", "1"))))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SERVER_KIND == "dartle":
        return
    # The suite checks dartle's own flags, limits and known bugs: it is no uvicorn comparison.
    here = os.path.dirname(__file__)
    skip = pytest.mark.skip(reason="tests/robustness runs against dartle only")
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(skip)


def pytest_configure(config: pytest.Config) -> None:
    # The over-long field and target mutations are 33 KiB: hypothesis warns about their repr.
    config.addinivalue_line("filterwarnings", "ignore:Generating overly large repr")
    config.addinivalue_line(
        "markers", "soak: the mixed-load soak (short by default; DARTLE_SOAK=SECONDS for the full one)"
    )


@contextlib.contextmanager
def serve_robust(
    *flags: str, target: str = ROBUST_APP, env: dict[str, str] | None = None
) -> Iterator[Harness]:
    with serve("--no-access-log", *flags, target=target, env=env) as harness:
        yield harness


@pytest.fixture(scope="module", params=LOOPS)
def robust(request: pytest.FixtureRequest) -> Iterator[Harness]:
    """One robust_app server per test module and event loop."""
    with serve_robust("--loop", request.param, "--lifespan", "on") as harness:
        yield harness


@pytest.fixture
def clean(robust: Harness) -> Iterator[Harness]:
    """The module's server; afterwards it must be alive, with no ASGI violation and no traceback."""
    mark = robust.log_mark()
    yield robust
    for conn in robust._raws:
        conn.close()
    robust._raws.clear()
    assert robust.process.proc.poll() is None, "the server died:\n" + robust.log_since(mark)
    log = robust.log_since(mark)
    assert "Traceback" not in log, log
    violations = robust.violations()
    before, robust.violations_checked = robust.violations_checked, len(violations)
    assert violations[before:] == [], "the app saw ASGI spec violations"


def stats(harness: Harness, **until: Any) -> dict[str, int]:
    """The server's task and fd counts and RSS; `until_tasks=N`/`until_fds=N` wait for them."""
    response = harness._control.get("/robust/stats", params=until)
    assert response.status_code == 200, f"server never settled to {until}: {response.text}"
    return dict(response.json())


def app_saw(harness: Harness, rids: list[str]) -> dict[str, dict[str, bool]]:
    """For each rid: did the app see its scope, and its whole body?"""
    if not rids:
        return {}
    response = harness._control.get("/robust/check", params={"rids": ",".join(rids)})
    response.raise_for_status()
    return dict(response.json())
