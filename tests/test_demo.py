"""The showcase app that `make demo` serves works on the dartle server."""

import httpx

from tests.support.servers import run_server


def test_demo_app_serves_its_pages() -> None:
    with run_server("examples.demo:app") as server, httpx.Client(base_url=server.url) as client:
        home = client.get("/")
        assert home.status_code == 200
        assert "text/html" in home.headers["content-type"]
        assert client.get("/items").json() == [{"id": 1, "name": "first item"}]
        created = client.post("/items", json={"name": "second"}).json()
        assert created == {"id": 2, "name": "second"}
        assert client.get("/items/2").json() == created
        assert client.get("/items/99").status_code == 404
        assert client.post("/items", json={"nope": 1}).status_code == 422
        with client.stream("GET", "/clock") as events:
            first = next(events.iter_lines())
        assert first.startswith("data: ")
        lines = client.get("/stream").text.splitlines()
        assert lines[0] == "line 1" and lines[-1] == "line 20"
