"""`dartle check`: a good app passes; each broken app is named for what it breaks."""

from __future__ import annotations

import pytest

from tests.ops.support import run_dartle

GOOD_LINES = [
    "ok       imported tests.apps.ops_check:good",
    "ok       lifespan startup complete",
    "ok       GET / -> 200",
    "ok       WebSocket /rooms/check: accepted",
    "ok       lifespan shutdown complete",
    "All checks passed.",
]


def test_good_app_passes() -> None:
    result = run_dartle("check", "tests.apps.ops_check:good")
    assert result.returncode == 0, result.stdout + result.stderr
    for line in GOOD_LINES:
        assert line in result.stdout
    assert "PROBLEM" not in result.stdout


BROKEN = {
    "does not import": ("tests.apps.broken_import:app", (),
                        "cannot load the app: importing 'tests.apps.broken_import' failed: "
                        "ModuleNotFoundError: No module named 'dartle_test_missing_dependency'"),
    "startup fails": ("tests.apps.lifespans:failing_startup", (),
                      "lifespan startup failed: cannot reach the database (marker-7731)"),
    "startup raises": ("tests.apps.lifespans:raising_startup", (),
                       "lifespan startup raised RuntimeError: startup exploded (marker-5120)"),
    "str body": ("tests.apps.ops_check:str_body", (),
                 "ASGI rule 'event.key' broken by the app: http.response.body 'body' must be bytes"),
    "body first": ("tests.apps.ops_check:body_first", (),
                   "ASGI rule 'http.response.body.order' broken by the app"),
    "raises": ("tests.apps.ops_check:raises", (),
               "GET / raised LookupError: no such thing (marker-3310)"),
    "no response": ("tests.apps.ops_check:silent", (),
                    "ASGI rule 'http.response.incomplete' broken by the app: the app returned "
                    "before http.response.start"),
    "hangs": ("tests.apps.ops_check:hangs", ("--timeout", "0.5"),
              "GET /: the app had not finished after 0.5s"),
    "ws before accept (framework)": ("tests.apps.ops_check:rude_ws", (),
                                     "WebSocket /ws raised RuntimeError"),
    "ws before accept (plain ASGI)": ("tests.apps.ops_check:raw_ws", ("--websocket", "/ws"),
                                      "ASGI rule 'websocket.send.order' broken by the app"),
    "lifespan required": ("tests.apps.lifespans:no_lifespan", ("--lifespan", "on"),
                          "the app does not support lifespan (--lifespan on)"),
}


@pytest.mark.parametrize(("target", "flags", "problem"), list(BROKEN.values()), ids=list(BROKEN))
def test_broken_app_is_reported_with_a_non_zero_exit(
    target: str, flags: tuple[str, ...], problem: str
) -> None:
    result = run_dartle("check", target, *flags)
    assert result.returncode == 1, result.stdout + result.stderr
    problems = [line for line in result.stdout.splitlines() if "PROBLEM" in line]
    assert any(problem in line for line in problems), result.stdout
    assert result.stdout.rstrip().endswith("found.")
    assert "Traceback" not in result.stdout + result.stderr


def test_app_without_lifespan_is_fine_in_auto_mode() -> None:
    result = run_dartle("check", "tests.apps.lifespans:no_lifespan")
    assert result.returncode == 0, result.stdout
    assert "note     the app does not support lifespan" in result.stdout


def test_app_from_the_environment() -> None:
    result = run_dartle("check", env={"DARTLE_APP": "tests.apps.ops_check:good"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dartle check tests.apps.ops_check:good" in result.stdout
