"""Dependencies in-process (TestClient): overrides as tests use them, app scope without
a lifespan, and the registration errors that name what is wrong."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated

import pytest

from dartle.web import App, Depends, Query, Request, TestClient, WebSocket


def get_db() -> str:
    return "real"


def test_overrides_swap_a_dependency_and_can_be_removed() -> None:
    app = App()

    @app.get("/")
    async def home(db: Annotated[str, Depends(get_db)]) -> dict[str, str]:
        return {"db": db}

    def fake_db(name: Annotated[str, Query()] = "fake") -> str:
        return name

    client = TestClient(app)
    assert client.get("/").json() == {"db": "real"}
    app.dependency_overrides[get_db] = fake_db
    # The override's own parameters are read from the request.
    assert client.get("/", params={"name": "mock"}).json() == {"db": "mock"}
    app.dependency_overrides.clear()
    assert client.get("/").json() == {"db": "real"}


def test_app_scope_without_lifespan_is_created_on_first_use() -> None:
    calls: list[str] = []

    async def resource() -> AsyncIterator[int]:
        calls.append("up")
        yield 41
        calls.append("down")

    app = App()

    @app.get("/")
    async def home(value: Annotated[int, Depends(resource, scope="app")]) -> int:
        return value + 1

    client = TestClient(app)  # no `with`: no lifespan
    assert client.get("/").json() == 42
    assert client.get("/").json() == 42
    assert calls == ["up"]


def test_app_scope_overrides_apply_at_startup() -> None:
    def real() -> str:
        return "real"

    app = App()

    @app.get("/")
    async def home(value: Annotated[str, Depends(real, scope="app")]) -> str:
        return value

    app.dependency_overrides[real] = lambda: "test"
    with TestClient(app) as client:
        assert client.get("/").text == "test"


def test_generator_teardown_order_in_process() -> None:
    steps: list[str] = []

    def first() -> Iterator[str]:
        steps.append("first up")
        yield "1"
        steps.append("first down")

    async def second(one: Annotated[str, Depends(first)]) -> AsyncIterator[str]:
        steps.append("second up")
        yield one + "2"
        steps.append("second down")

    app = App()

    @app.get("/")
    def home(value: Annotated[str, Depends(second)]) -> str:  # a sync handler
        steps.append("handler")
        return value

    assert TestClient(app).get("/").text == "12"
    assert steps == ["first up", "second up", "handler", "second down", "first down"]


def test_dependency_that_yields_twice_is_an_error() -> None:
    async def twice() -> AsyncIterator[int]:
        yield 1
        yield 2

    app = App()

    @app.get("/")
    async def home(value: Annotated[int, Depends(twice)]) -> int:
        return value

    with pytest.raises(RuntimeError, match="yielded more than once"):
        TestClient(app).get("/")


def test_typed_websocket_with_dependency_teardown() -> None:
    steps: list[str] = []

    async def resource() -> AsyncIterator[str]:
        steps.append("open")
        yield "r"
        steps.append("close")

    app = App()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, value: Annotated[str, Depends(resource)], n: int = 1) -> None:
        await websocket.accept()
        await websocket.send_text(value * n)
        await websocket.close()

    with TestClient(app) as client, client.websocket_connect("/ws?n=3") as session:
        assert session.receive_text() == "rrr"
    assert steps == ["open", "close"]


# --- registration errors -----------------------------------------------------------------


def test_cycle_is_refused() -> None:
    def loop_a(b: Annotated[str, Depends(loop_b)]) -> str:
        return b

    def loop_b(a: Annotated[str, Depends(loop_a)]) -> str:
        return a

    async def handler(value: Annotated[str, Depends(loop_a)]) -> str:
        return value

    with pytest.raises(TypeError, match=r"dependency cycle: .*loop_a -> .*loop_b -> .*loop_a"):
        App().add_route("/", handler)


def test_app_scoped_dependency_cannot_read_the_request() -> None:
    def needs_query(page: int) -> int:
        return page

    async def handler(value: Annotated[int, Depends(needs_query, scope="app")]) -> int:
        return value

    with pytest.raises(TypeError, match=r"needs_query.* cannot take the query parameter 'page'"):
        App().add_route("/", handler)


def test_app_scoped_dependency_cannot_depend_on_request_scope() -> None:
    def per_request(request: Request) -> str:
        return request.url.path

    def shared(value: Annotated[str, Depends(per_request)]) -> str:
        return value

    async def handler(value: Annotated[str, Depends(shared, scope="app")]) -> str:
        return value

    with pytest.raises(TypeError, match="cannot depend on the request-scoped"):
        App().add_route("/", handler)


def test_route_dependency_must_be_callable() -> None:
    async def handler() -> str:
        return "x"

    with pytest.raises(TypeError, match="route dependency 'auth' is not a callable"):
        App().add_route("/", handler, dependencies=["auth"])


def test_path_marker_must_name_a_path_parameter() -> None:
    from dartle.web import Path

    async def handler(item: Annotated[int, Path()]) -> int:
        return item

    with pytest.raises(TypeError, match="path parameter 'item' is not in the route's path"):
        App().add_route("/things/{id}", handler)


def test_unresolvable_annotation_is_named() -> None:
    async def handler(item: Missing) -> int:  # type: ignore[name-defined]  # noqa: F821
        return 1

    with pytest.raises(TypeError, match="cannot resolve the annotation 'Missing' of parameter 'item'"):
        App().add_route("/", handler)


def test_conflicting_declarations_of_one_query_parameter() -> None:
    def limit_a(limit: int = 10) -> int:
        return limit

    def limit_b(limit: str = "x") -> str:
        return limit

    async def handler(a: Annotated[int, Depends(limit_a)], b: Annotated[str, Depends(limit_b)]) -> str:
        return "x"

    app = App()
    with pytest.raises(TypeError, match="query parameter 'limit' is declared twice"):
        app.add_route("/", handler)
