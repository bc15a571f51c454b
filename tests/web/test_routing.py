"""Routing tables, convertors, url_path_for, mounts and hosts, in-process (TestClient)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from dartle.web.app import App
from dartle.web.convertors import Convertor, register_convertor
from dartle.web.paths import Matcher, NoMatchFound, PathPattern, route_path
from dartle.web.requests import Request
from dartle.web.responses import PlainTextResponse, Response
from dartle.web.routes import Mount, Route
from dartle.web.routing import Router
from dartle.web.testing import TestClient
from dartle.web.types import Receive, Scope, Send


async def name_of_route(request: Request) -> dict[str, Any]:
    return {"route": request.scope["route"].path, "params": request.path_params}


def test_static_path_wins_over_earlier_pattern() -> None:
    app = App()
    app.add_route("/users/{name}", name_of_route)
    app.add_route("/users/me", name_of_route)
    client = TestClient(app)
    assert client.get("/users/me").json()["route"] == "/users/me"
    assert client.get("/users/ada").json() == {"route": "/users/{name}", "params": {"name": "ada"}}


def test_patterns_match_in_declaration_order() -> None:
    app = App()
    app.add_route("/x/{a:int}", name_of_route)
    app.add_route("/x/{b}", name_of_route)
    client = TestClient(app)
    assert client.get("/x/5").json() == {"route": "/x/{a:int}", "params": {"a": 5}}
    assert client.get("/x/five").json() == {"route": "/x/{b}", "params": {"b": "five"}}


def test_method_specific_patterns_fall_through_to_a_later_route() -> None:
    app = App()
    app.add_route("/r/{id:int}", name_of_route, methods=["GET"])
    app.add_route("/r/{name}", name_of_route, methods=["POST"])
    client = TestClient(app)
    assert client.post("/r/5").json() == {"route": "/r/{name}", "params": {"name": "5"}}
    r = client.delete("/r/5")
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, HEAD, POST"


def test_many_routes_each_reachable() -> None:
    app = App()
    for i in range(300):
        app.add_route(f"/n{i}/{{value:int}}", name_of_route, name=f"r{i}")
        app.add_route(f"/s{i}", name_of_route)
    client = TestClient(app)
    for i in (0, 1, 150, 299):
        assert client.get(f"/n{i}/{i}").json() == {"route": f"/n{i}/{{value:int}}", "params": {"value": i}}
        assert client.get(f"/s{i}").json()["route"] == f"/s{i}"
    assert app.url_path_for("r299", value=3) == "/n299/3"


def test_routes_added_after_first_request_are_found() -> None:
    app = App()
    app.add_route("/a", name_of_route)
    client = TestClient(app)
    assert client.get("/b").status_code == 404
    app.add_route("/b", name_of_route)
    assert client.get("/b").status_code == 200


class HexConvertor(Convertor[int]):
    regex = "[0-9a-f]+"

    def convert(self, value: str) -> int:
        return int(value, 16)

    def to_string(self, value: int) -> str:
        return format(value, "x")


def test_user_convertor() -> None:
    register_convertor("hex", HexConvertor())
    app = App()
    app.add_route("/color/{c:hex}", name_of_route, name="color")
    client = TestClient(app)
    assert client.get("/color/ff").json()["params"] == {"c": 255}
    assert client.get("/color/zz").status_code == 404
    assert app.url_path_for("color", c=4095) == "/color/fff"


def test_convertor_with_groups_is_refused() -> None:
    class Bad(HexConvertor):
        regex = "(a|b)"

    with pytest.raises(ValueError, match="capturing groups"):
        register_convertor("bad", Bad())


def test_bad_templates_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown path convertor"):
        PathPattern("/x/{a:nope}")
    with pytest.raises(ValueError, match="duplicate"):
        PathPattern("/x/{a}/{a}")
    with pytest.raises(ValueError, match="start with"):
        PathPattern("x")


def test_builtin_convertors() -> None:
    pattern = PathPattern("/{i:int}/{f:float}/{u:uuid}/{rest:path}")
    u = uuid.uuid4()
    values = pattern.match(f"/7/2.5/{u}/a/b")
    assert values is not None
    assert pattern.params(values) == {"i": 7, "f": 2.5, "u": u, "rest": "a/b"}
    assert pattern.build({"i": 7, "f": 2.5, "u": u, "rest": "a/b"}) == f"/7/2.5/{u}/a/b"
    with pytest.raises(ValueError):
        PathPattern("/{i:int}").build({"i": -1})
    with pytest.raises(ValueError):
        PathPattern("/{s}").build({"s": "a/b"})


def test_matcher_reports_the_alternative_that_matched() -> None:
    patterns = [PathPattern(p) for p in ("/a/{x}", "/b/{x}/{y:int}", "/c")]
    matcher = Matcher([(p, p.path) for p in patterns])
    assert matcher.match("/b/q/3") == ("/b/{x}/{y:int}", {"x": "q", "y": 3}, None)
    assert matcher.match("/a/z") == ("/a/{x}", {"x": "z"}, None)
    assert matcher.match("/c") == ("/c", {}, None)
    assert matcher.match("/d") is None
    mounts = Matcher([(PathPattern("/m/{id:int}", prefix=True), "mount")])
    assert mounts.match("/m/4/rest/of/it") == ("mount", {"id": 4}, "/rest/of/it")
    assert mounts.match("/m/4") == ("mount", {"id": 4}, None)
    assert mounts.match("/m/4x") is None


def test_route_path_strips_root_path() -> None:
    assert route_path("/api/users", "/api") == "/users"
    assert route_path("/api", "/api") == "/"
    assert route_path("/apiusers", "/api") == "/apiusers"
    assert route_path("/users", "/api") == "/users"


def test_url_path_for_through_mounts_and_errors() -> None:
    inner = Router()
    inner.add_route("/items/{id:int}", name_of_route, name="item")
    app = App()
    app.mount("/v1/{tenant}", inner, name="v1")
    assert app.url_path_for("v1:item", tenant="acme", id=3) == "/v1/acme/items/3"
    with pytest.raises(NoMatchFound):
        app.url_path_for("v1:item", tenant="acme")
    with pytest.raises(NoMatchFound):
        app.url_path_for("missing")
    client = TestClient(app)
    data = client.get("/v1/acme/items/3").json()
    assert data["params"] == {"tenant": "acme", "id": 3}


def test_request_url_for_is_absolute() -> None:
    app = App()

    @app.get("/where/{x}", name="where")
    async def where(request: Request) -> str:
        return str(request.url_for("where", x="y"))

    assert TestClient(app).get("/where/a").text == "http://testserver/where/y"


async def raw_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    body = f"{scope['root_path']}|{scope['path']}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def test_mount_sets_root_path_and_keeps_full_path() -> None:
    app = App()
    app.mount("/raw", raw_asgi)
    client = TestClient(app)
    assert client.get("/raw/a/b").text == "/raw|/raw/a/b"
    assert client.get("/raw").text == "/raw|/raw"
    assert client.get("/rawx").status_code == 404


def test_root_path_from_server_is_respected() -> None:
    app = App()
    app.mount("/raw", raw_asgi)
    app.add_route("/hello", name_of_route)
    client = TestClient(app, root_path="/prefix")
    assert client.get("/raw/z").text == "/prefix/raw|/prefix/raw/z"
    assert client.get("/hello").json()["route"] == "/hello"


def test_nested_mounts_accumulate_root_path() -> None:
    inner = App()
    inner.mount("/raw", raw_asgi)
    outer = App()
    outer.mount("/outer", inner)
    assert TestClient(outer).get("/outer/raw/x").text == "/outer/raw|/outer/raw/x"


def test_include_router_applies_prefix_tags_and_dependencies() -> None:
    ran: list[str] = []

    def auth() -> None:
        ran.append("auth")

    def rate_limit() -> None:
        ran.append("rate_limit")

    users = Router(prefix="/users", tags=["users"], dependencies=[auth])

    @users.get("/{id:int}")
    async def user(request: Request) -> dict[str, Any]:
        route = request.scope["route"]
        deps = [getattr(d, "__name__", None) or d.dependency.__name__ for d in route.dependencies]
        return {"id": request.path_params["id"], "tags": route.tags, "deps": deps}

    app = App()
    app.include_router(users, prefix="/v2", tags=["v2"], dependencies=[rate_limit])
    assert TestClient(app).get("/v2/users/4").json() == {
        "id": 4,
        "tags": ["v2", "users"],
        "deps": ["rate_limit", "auth"],
    }
    assert ran == ["rate_limit", "auth"]  # the router's and the app's dependencies ran


def test_host_routing_with_params_and_port() -> None:
    api = Router()
    api.add_route("/", name_of_route)
    app = App()
    app.host("{sub}.example.com", api)
    app.add_route("/", lambda request: "fallback")
    client = TestClient(app)
    assert client.get("/", headers={"host": "shop.example.com:8080"}).json()["params"] == {"sub": "shop"}
    assert client.get("/", headers={"host": "example.org"}).text == "fallback"


def test_redirect_slashes_can_be_turned_off() -> None:
    app = App(redirect_slashes=False)
    app.add_route("/a", name_of_route)
    assert TestClient(app).get("/a/", follow_redirects=False).status_code == 404


def test_redirect_keeps_root_path_and_query() -> None:
    app = App()
    app.add_route("/a/", name_of_route)
    r = TestClient(app, root_path="/p").get("/a?x=1", follow_redirects=False)
    assert r.status_code == 307
    assert r.headers["location"] == "http://testserver/p/a/?x=1"


def test_router_is_an_asgi_app_on_its_own() -> None:
    router = Router([Route("/ping", lambda request: PlainTextResponse("pong"))])
    client = TestClient(router)
    assert client.get("/ping").text == "pong"
    assert client.get("/nope").status_code == 404


def test_mount_with_routes() -> None:
    app = App([Mount("/m", routes=[Route("/r", lambda request: "mounted route")])])
    assert TestClient(app).get("/m/r").text == "mounted route"


def test_sync_endpoint_returning_response() -> None:
    app = App()

    @app.get("/sync")
    def sync(request: Request) -> Response:
        return PlainTextResponse("from a thread")

    assert TestClient(app).get("/sync").text == "from a thread"


def test_url_for_inside_a_mounted_app_sees_the_whole_tree() -> None:
    inner = App()

    @inner.get("/page/{n:int}", name="page")
    async def page(request: Request) -> str:
        return str(request.url_for("docs:page", n=request.path_params["n"] + 1))

    app = App()
    app.mount("/docs", inner, name="docs")
    client = TestClient(app, root_path="/behind-proxy")
    assert client.get("/docs/page/1").text == "http://testserver/behind-proxy/docs/page/2"
