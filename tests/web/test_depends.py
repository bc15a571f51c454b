"""Dependencies over real sockets: setup and teardown order, teardown after the response
and around background tasks, errors thrown into generators, caching, request-reading
and class dependencies, route and router dependencies, app scope, overrides."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.servers import ServerProcess, run_server


@pytest.fixture(scope="module", params=("uvicorn", "dartle"))
def deps_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with run_server("tests.web.apps.typed_deps:app", kind=request.param) as server:
        yield server


@pytest.fixture
def http(deps_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=deps_server.url, timeout=15) as client:
        client.post("/events/clear")
        yield client


def wait_events(http: httpx.Client, count: int) -> list[str]:
    r = http.get("/events/wait", params={"count": count})
    assert r.status_code == 200, r.text
    events: list[str] = r.json()["events"]
    return events


def test_setup_and_teardown_order_with_background_task(http: httpx.Client) -> None:
    assert http.get("/order").json() == {"value": "outer+inner"}
    assert wait_events(http, 6) == [
        "outer enter",
        "inner enter",
        "handler",
        "inner exit",
        "outer exit",
        "task",
    ]


def test_a_value_handed_to_a_background_task_stays_open_for_it(http: httpx.Client) -> None:
    assert http.get("/handover").json() == {"queued": True}
    assert wait_events(http, 4) == [
        "session open",
        "other closed",  # not handed over: closed before the task runs
        "task sees session open=True",
        "session closed",
    ]


def test_teardown_runs_after_the_response_is_sent(http: httpx.Client) -> None:
    # The dependency's teardown blocks until /release: the response arrives anyway.
    r = http.get("/after-response")
    assert r.json() == {"value": "blocked"}
    assert wait_events(http, 1) == ["after-response handler"]
    http.post("/release")
    assert wait_events(http, 2) == ["after-response handler", "blocked exit"]


def test_handler_errors_are_thrown_into_generators(http: httpx.Client) -> None:
    assert http.post("/transfer", params={"amount": 5}).json() == {"amount": 5}
    assert wait_events(http, 2) == ["begin", "commit"]
    http.post("/events/clear")
    r = http.post("/transfer", params={"amount": -5})
    assert r.status_code == 409
    assert r.json() == {"detail": "conflict: negative amount"}
    assert wait_events(http, 2) == ["begin", "rollback negative amount"]


def test_validation_errors_of_dependency_parameters(http: httpx.Client) -> None:
    r = http.post("/transfer", params={"amount": "lots"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", "amount"]
    # Nothing was set up for a request that never reached its handler.
    assert http.get("/events").json() == {"events": []}


def test_per_request_cache(http: httpx.Client) -> None:
    assert http.get("/cached").json() == {"shared": True, "fresh_differs": True}
    assert http.get("/events").json()["events"] == ["counted", "counted"]


def test_class_dependency_and_router_dependency(http: httpx.Client) -> None:
    r = http.get("/tenant/page", params={"offset": 20}, headers={"x-tenant": "acme"})
    assert r.json() == {"offset": 20, "size": 10, "state": "yes"}
    assert http.get("/events").json()["events"] == ["tenant acme"]
    assert http.get("/tenant/page").status_code == 403
    r = http.get("/tenant/page", params={"size": 99}, headers={"x-tenant": "acme"})
    assert r.json()["detail"][0]["loc"] == ["query", "size"]


def test_route_dependency(http: httpx.Client) -> None:
    assert http.get("/guarded").status_code == 403
    assert http.get("/guarded", headers={"x-tenant": "t"}).text == "in"


def test_app_scoped_dependency_is_created_once_at_startup(
    http: httpx.Client, deps_server: ServerProcess
) -> None:
    log = deps_server.wait_for_log(rb"lifespan up")
    # Created by the lifespan, before the app's own lifespan code and any request.
    assert log.index(b"pool up deps") < log.index(b"lifespan up")
    first = http.get("/pool").json()
    second = http.get("/pool").json()
    assert first == second
    assert first["created"] == 1
    assert first["open"] is True
    assert first["dsn"] == "memory://"


def test_app_scoped_teardown_at_shutdown() -> None:
    with run_server("tests.web.apps.typed_deps:app", kind="dartle") as server:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.get("/pool").json()["open"] is True
        server.stop()
        log = server.read_log()
    assert log.index(b"lifespan down") < log.index(b"pool down")


def test_overrides_installed_by_the_app_module() -> None:
    with (
        run_server(
            "tests.web.apps.typed_deps:app", kind="dartle", env={"DARTLE_TYPED_OVERRIDE": "1"}
        ) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        # The override takes no header: the original's required x-user is not asked for.
        assert client.get("/whoami").json() == {"user": "override"}


def test_without_override_the_original_runs(http: httpx.Client) -> None:
    assert http.get("/whoami", headers={"x-user": "ada"}).json() == {"user": "ada"}
    assert http.get("/whoami").json()["detail"][0]["loc"] == ["header", "x-user"]
