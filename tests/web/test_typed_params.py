"""Typed handler parameters over real sockets (uvicorn and the dartle server):
path, query, header, cookie, JSON bodies, forms and uploads, and the 4xx answers."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.support.servers import ServerProcess, run_server

SERVER_KINDS = ("uvicorn", "dartle")


@pytest.fixture(scope="module", params=SERVER_KINDS)
def typed_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with run_server("tests.web.apps.typed_api:app", kind=request.param) as server:
        yield server


@pytest.fixture
def http(typed_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=typed_server.url, timeout=10) as client:
        yield client


def test_path_query_header_cookie(http: httpx.Client) -> None:
    r = http.get(
        "/items/3",
        params=[("q", "a b"), ("limit", "5"), ("tags", "x"), ("tags", "y"), ("color", "blue")],
        headers={"x-token": "tok", "cookie": "other=1; session=s1"},
    )
    assert r.status_code == 200
    assert r.json() == {
        "item_id": 3,
        "q": "a b",
        "limit": 5,
        "tags": ["x", "y"],
        "color": "blue",
        "x_token": "tok",
        "session": "s1",
    }


def test_defaults_apply_when_absent(http: httpx.Client) -> None:
    assert http.get("/items/1").json() == {
        "item_id": 1,
        "q": None,
        "limit": 10,
        "tags": [],
        "color": "red",
        "x_token": None,
        "session": None,
    }


def test_scalar_types_aliases_and_repeated_headers(http: httpx.Client) -> None:
    r = http.get(
        "/typed/scalars/2024-02-29",
        params={"ident": "12345678-1234-5678-1234-567812345678", "flag": "yes", "mode": "slow", "r": "2.5"},
        headers=[("user-agent", "probe/1"), ("x-via", "a"), ("x-via", "b")],
    )
    assert r.json() == {
        "when": "2024-02-29",
        "ident": "12345678-1234-5678-1234-567812345678",
        "flag": True,
        "mode": "slow",
        "ratio": 2.5,
        "agent": "probe/1",
        "via": ["a", "b"],
    }


def test_every_bad_field_is_named_in_one_422(http: httpx.Client) -> None:
    r = http.get("/items/abc", params={"limit": "0", "color": "green"})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/json"
    errors = r.json()["detail"]
    assert [e["loc"] for e in errors] == [["path", "item_id"], ["query", "limit"], ["query", "color"]]
    assert [e["type"] for e in errors] == ["int_parsing", "greater_than_equal", "enum"]
    assert all(set(e) == {"loc", "msg", "type"} for e in errors)
    assert "greater than or equal to 1" in errors[1]["msg"]


def test_alias_is_the_name_in_errors(http: httpx.Client) -> None:
    r = http.get("/typed/scalars/2024-01-01", params={"ident": "nope", "r": "-1", "mode": "medium"})
    locs = [e["loc"] for e in r.json()["detail"]]
    assert locs == [["query", "ident"], ["query", "mode"], ["query", "r"]]


def test_path_marker_constraints(http: httpx.Client) -> None:
    assert http.get("/typed/path/ab/c/d").json() == {"name": "ab", "rest": "c/d"}
    r = http.get("/typed/path/a/c")
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["path", "name"]


def test_json_body_model_and_response_model(http: httpx.Client) -> None:
    r = http.post("/items/", params={"q": 1}, json={"name": "lamp", "price": 9.5, "tags": ["home"]})
    assert r.status_code == 201
    # The response model drops what it does not declare ("extra").
    assert r.json() == {"id": 8, "name": "lamp", "price": 9.5}


def test_body_errors_name_each_field(http: httpx.Client) -> None:
    r = http.post("/items/", params={"q": "x"}, json={"name": "", "price": -1, "color": "green"})
    assert r.status_code == 422
    locs = [e["loc"] for e in r.json()["detail"]]
    assert locs == [["query", "q"], ["body", "name"], ["body", "price"], ["body", "color"]]


def test_missing_body(http: httpx.Client) -> None:
    r = http.post("/items/", headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json() == {"detail": [{"loc": ["body"], "msg": "Field required", "type": "missing"}]}


def test_malformed_json_is_400_with_the_position(http: httpx.Client) -> None:
    r = http.post(
        "/items/", content=b'{"name": "x",\n "price": }', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    detail = r.json()["detail"]
    assert detail.startswith("Malformed JSON body:")
    assert "line 2 column" in detail


def test_non_json_content_type_is_415(http: httpx.Client) -> None:
    r = http.post("/items/", content=b"name=x", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    assert "application/json" in r.json()["detail"]
    r = http.post(
        "/items/",
        content=b'{"name": "x", "price": 1}',
        headers={"content-type": "application/merge-patch+json"},
    )
    assert r.status_code == 201


def test_embedded_and_plain_bodies(http: httpx.Client) -> None:
    r = http.post("/typed/embedded", json={"item": {"name": "a", "price": 1}, "note": "hi"})
    assert r.json() == {"item": "a", "note": "hi"}
    r = http.post("/typed/embedded", json={"item": {"name": "a"}, "note": "too long"})
    assert [e["loc"] for e in r.json()["detail"]] == [["body", "item", "price"], ["body", "note"]]
    assert http.post("/typed/point", json={"x": 1, "y": 2}).json() == {"x": 2, "y": 1}
    assert http.post("/typed/range", json={"low": 2, "high": 7}).json() == {"width": 5}
    r = http.post("/typed/range", json={"low": 2})
    assert r.json()["detail"][0]["loc"] == ["body", "high"]
    assert http.post("/typed/numbers", json=[1, "2", 3]).json() == {"sum": 6}
    assert http.post("/typed/numbers", json=[]).json()["detail"][0]["type"] == "too_short"
    assert http.put("/typed/optional-body").json() == {"given": False}
    assert http.put("/typed/optional-body", json={"name": "a", "price": 1}).json() == {"given": True}


def test_urlencoded_form(http: httpx.Client) -> None:
    r = http.post("/typed/form", data={"name": "ada", "age": "36", "colors": ["red", "blue"]})
    assert r.json() == {"name": "ada", "age": 36, "colors": ["red", "blue"]}
    # An empty input of an HTML form means "not given": the default applies.
    assert http.post("/typed/form", data={"name": "ada", "age": ""}).json()["age"] == 0
    r = http.post("/typed/form", data={"age": "-1"})
    assert [e["loc"] for e in r.json()["detail"]] == [["body", "name"], ["body", "age"]]


def test_multipart_uploads(http: httpx.Client) -> None:
    r = http.post(
        "/typed/upload",
        data={"title": "report"},
        files=[
            ("document", ("r.pdf", b"%PDF-1.7 hello", "application/pdf")),
            ("extras", ("a.txt", b"a", "text/plain")),
            ("extras", ("b.txt", b"b", "text/plain")),
            ("raw", ("raw.bin", b"\x00\x01\x02", "application/octet-stream")),
        ],
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "title": "report",
        "filename": "r.pdf",
        "type": "application/pdf",
        "size": 14,
        "extras": ["a.txt", "b.txt"],
        "raw": 3,
    }


def test_missing_upload_is_named(http: httpx.Client) -> None:
    r = http.post("/typed/upload", data={"title": "x"}, files={"other": ("o.txt", b"o")})
    assert r.status_code == 422
    assert r.json()["detail"] == [{"loc": ["body", "document"], "msg": "Field required", "type": "missing"}]
    # A plain field where a file is expected.
    r = http.post("/typed/upload", data={"title": "x", "document": "not a file"}, files={"o": ("o", b"o")})
    assert r.json()["detail"] == [
        {"loc": ["body", "document"], "msg": "Expected an uploaded file", "type": "file_expected"}
    ]


def test_percent_encoded_query_and_raw_bytes(typed_server: ServerProcess) -> None:
    # A hand-written request: the query is exactly what a client put on the wire.
    with socket.create_connection((typed_server.host, typed_server.port), timeout=10) as sock:
        sock.sendall(
            b"GET /items/5?q=%C3%A9t%C3%A9+x&tags=a%26b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b'"q":"\xc3\xa9t\xc3\xa9 x"' in body
    assert b'"tags":["a&b"]' in body
