"""The showcase app that `make demo` serves, piece by piece, on a real dartle server."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest
from websockets.sync.client import connect

from examples.showcase.home import PAGES
from tests.support.servers import ServerProcess, run_server

pytest.importorskip("flask", reason="the showcase mounts a Flask app (Flask is in the dev extra)")


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with run_server("examples.demo:app") as server:
        yield server


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def test_startup_log_lists_every_page_url(server: ServerProcess) -> None:
    # The list follows the server's "running on" line, with the address it names.
    log = server.wait_for_log(rb"chat messages go through").decode()
    listing = log[log.index("running on") :]
    for path, text in PAGES:
        url = server.url + path
        assert re.search(rf"^INFO: +{re.escape(url)} +{re.escape(text)}$", listing, re.M), url


def test_home_page_links_every_page(client: httpx.Client) -> None:
    home = client.get("/")
    assert home.status_code == 200
    assert home.headers["content-type"].startswith("text/html")
    for path, _ in PAGES[1:]:
        assert f'href="{path}"' in home.text
    for path, _ in PAGES:
        if path not in {"/stream", "/clock"}:  # endless or slow: tested below
            assert client.get(path).status_code == 200, path


def test_typed_crud_round_trip(client: httpx.Client) -> None:
    seeded = client.get("/items").json()
    assert [item["name"] for item in seeded] == ["teapot", "desk lamp"]
    assert client.get("/items", params={"tag": "office"}).json() == [seeded[1]]

    created = client.post("/items", json={"name": "mug", "price": 8, "tags": ["kitchen"]})
    assert created.status_code == 201
    item = created.json()
    assert item == {"id": item["id"], "name": "mug", "price": 8.0, "tags": ["kitchen"]}
    url = f"/items/{item['id']}"
    assert client.get(url).json() == item

    patched = client.patch(url, json={"price": 9.5})
    assert patched.json() == {**item, "price": 9.5}
    replaced = client.put(url, json={"name": "cup", "price": 3})
    assert replaced.json() == {"id": item["id"], "name": "cup", "price": 3.0, "tags": []}

    assert client.delete(url).status_code == 204
    gone = client.get(url)
    assert (gone.status_code, gone.json()) == (404, {"detail": f"no item with id {item['id']}"})
    assert client.patch(url, json={"price": 1}).status_code == 404
    assert item["id"] not in [i["id"] for i in client.get("/items").json()]


def test_invalid_input_is_a_422_naming_each_field(client: httpx.Client) -> None:
    bad = client.post("/items", json={"name": "", "price": -1})
    assert bad.status_code == 422
    assert [error["loc"] for error in bad.json()["detail"]] == [["body", "name"], ["body", "price"]]
    assert client.patch("/items/1", json={"price": "free"}).status_code == 422
    assert client.get("/items/one").json()["detail"][0]["loc"] == ["path", "item_id"]
    assert client.get("/items", params={"limit": 0}).status_code == 422
    malformed = client.post("/items", content=b"{", headers={"content-type": "application/json"})
    assert malformed.status_code == 400


def test_api_is_documented(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    operations = {
        (method.upper(), path)
        for path, entry in document["paths"].items()
        for method in entry
        if method in {"get", "post", "put", "patch", "delete"}
    }
    for expected in [
        ("GET", "/items"), ("POST", "/items"), ("GET", "/items/{item_id}"), ("PUT", "/items/{item_id}"),
        ("PATCH", "/items/{item_id}"), ("DELETE", "/items/{item_id}"), ("GET", "/stream"), ("GET", "/clock"),
    ]:
        assert expected in operations
    assert {"Item", "ItemIn", "ItemPatch"} <= set(document["components"]["schemas"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.text
    assets = re.findall(r'src="([^"]+\.js)"', docs.text)
    assert assets and all(client.get(asset).status_code == 200 for asset in assets)
    assert "redoc" in client.get("/redoc").text.lower()


def test_stream_arrives_line_by_line(client: httpx.Client) -> None:
    with client.stream("GET", "/stream", params={"count": 3}) as response:
        assert response.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in response.headers
        lines = list(response.iter_lines())
    assert lines == ["line 1 of 3", "line 2 of 3", "line 3 of 3"]
    assert client.get("/stream", params={"count": 1000}).status_code == 422


def test_clock_sends_server_sent_events(client: httpx.Client) -> None:
    with client.stream("GET", "/clock") as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        lines = events.iter_lines()
        first = [next(lines), next(lines)]
    assert first[0] == "id: 1"
    assert re.fullmatch(r"data: \d\d:\d\d:\d\d", first[1])


def test_chat_message_goes_from_one_websocket_to_another(server: ServerProcess) -> None:
    base = server.url.replace("http://", "ws://") + "/chat/ws"
    with connect(f"{base}?room=demo&name=ada") as ada, connect(f"{base}?room=demo&name=bob") as bob:
        assert json.loads(ada.recv(timeout=5))["type"] == "welcome"
        assert json.loads(bob.recv(timeout=5))["type"] == "welcome"
        ada.send(json.dumps({"text": "hello bob"}))
        message = json.loads(bob.recv(timeout=5))
        assert (message["type"], message["name"], message["text"]) == ("message", "ada", "hello bob")
        bob.send(json.dumps({"text": ""}))
        assert json.loads(bob.recv(timeout=5))["type"] == "error"


def test_chat_page_is_served(client: httpx.Client) -> None:
    page = client.get("/chat/")
    assert page.status_code == 200 and "/chat/ws" in page.text


def test_flask_app_is_mounted_through_the_wsgi_bridge(client: httpx.Client) -> None:
    page = client.get("/flask/")
    assert page.status_code == 200
    assert "Hello from Flask" in page.text
    assert 'href="/flask/greet/dartle"' in page.text  # url_for saw SCRIPT_NAME
    greeting = client.get("/flask/greet/ada").json()
    assert greeting["greeting"] == "Hello, ada!"
    assert (greeting["script_name"], greeting["path"]) == ("/flask", "/greet/ada")
    assert client.get("/flask/nope").status_code == 404


def test_api_answers_over_http2_too(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, http1=False, http2=True, timeout=10) as client:  # h2c
        response = client.get("/items/1")
    assert response.http_version == "HTTP/2"
    assert response.json()["name"] == "teapot"
