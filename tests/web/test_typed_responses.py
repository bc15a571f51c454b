"""Return values of typed handlers over real sockets: response models, status codes,
pass-through Responses, headers set through a Response parameter, output errors."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.servers import ServerProcess, run_server


@pytest.fixture(scope="module", params=("uvicorn", "dartle"))
def typed_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with run_server("tests.web.apps.typed_api:app", kind=request.param) as server:
        yield server


@pytest.fixture
def http(typed_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=typed_server.url, timeout=10) as client:
        yield client


def test_response_model_filters_the_return_value(http: httpx.Client) -> None:
    # The handler returns a Secret; response_model=Public keeps only the name.
    r = http.get("/typed/secret")
    assert r.json() == {"name": "ada"}
    assert "hunter2" not in r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["content-length"] == str(len(r.content))


def test_return_annotation_is_the_model(http: httpx.Client) -> None:
    # Model instances and dicts alike are validated and serialised by the annotation.
    assert http.get("/typed/models").json() == [
        {"id": 1, "name": "a", "price": 1.5},
        {"id": 2, "name": "b", "price": 2.0},
    ]


def test_output_not_matching_the_model_is_a_server_error(
    http: httpx.Client, typed_server: ServerProcess
) -> None:
    r = http.get("/typed/broken")
    assert r.status_code == 500
    assert r.text == "Internal Server Error"
    log = typed_server.wait_for_log(rb"ResponseValidationError")
    assert b"does not match its response model" in log


def test_returned_response_passes_through(http: httpx.Client) -> None:
    r = http.get("/typed/passthrough")
    assert (r.status_code, r.json(), r.headers["x-raw"]) == (203, {"anything": True}, "1")


def test_status_code_and_empty_204(http: httpx.Client) -> None:
    r = http.delete("/typed/items/3")
    assert r.status_code == 204
    assert r.content == b""
    assert "content-length" not in r.headers


def test_str_is_text_and_response_class(http: httpx.Client) -> None:
    r = http.get("/typed/text", params={"name": "ada"})
    assert (r.text, r.headers["content-type"]) == ("hello ada", "text/plain; charset=utf-8")
    r = http.get("/typed/html", params={"name": "ada"})
    assert (r.text, r.headers["content-type"]) == ("<p>ada</p>", "text/html; charset=utf-8")


def test_response_parameter_sets_headers_cookies_status(http: httpx.Client) -> None:
    r = http.get("/typed/cookie-setter", params={"value": "mint"})
    assert r.status_code == 202
    assert r.json() == {"set": "mint"}
    assert r.headers["x-extra"] == "yes"
    assert r.headers["set-cookie"].startswith("flavour=mint;")
    assert r.headers["content-length"] == str(len(r.content))


def test_old_style_handler_still_works(http: httpx.Client) -> None:
    assert http.get("/typed/legacy", params={"x": "1"}).text == "legacy 1"


def test_head_on_a_typed_get(http: httpx.Client) -> None:
    r = http.head("/items/3")
    assert r.status_code == 200
    assert r.content == b""
