"""CORSMiddleware over real sockets, on uvicorn and on the dartle server."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import httpx
import pytest

from dartle.web.middleware import CORSMiddleware
from tests.support.servers import run_server
from tests.web.apps.mw_common import echo

GOOD = "https://good.example"


@pytest.fixture(scope="module", params=["uvicorn", "dartle"])
def serve(request: pytest.FixtureRequest) -> Iterator[Callable[[str], httpx.Client]]:
    """`serve("wildcard")` gives a client for that app of mw_cors, started once per module."""
    clients: dict[str, httpx.Client] = {}
    with contextlib.ExitStack() as stack:

        def get(name: str) -> httpx.Client:
            if name not in clients:
                server = stack.enter_context(run_server(f"tests.web.apps.mw_cors:{name}", kind=request.param))
                clients[name] = stack.enter_context(httpx.Client(base_url=server.url, timeout=10))
            return clients[name]

        yield get


def vary(response: httpx.Response) -> set[str]:
    return {
        part.strip().lower()
        for line in response.headers.get_list("vary")
        for part in line.split(",")
        if part.strip()
    }


def preflight(client: httpx.Client, origin: str, method: str, headers: str | None = None) -> httpx.Response:
    request_headers = {"origin": origin, "access-control-request-method": method}
    if headers is not None:
        request_headers["access-control-request-headers"] = headers
    return client.options("/json", headers=request_headers)


# -- allow-list -----------------------------------------------------------------------


def test_preflight_allowed(serve: Callable[[str], httpx.Client]) -> None:
    response = preflight(serve("app"), GOOD, "PUT", "X-Token, content-type")
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == GOOD
    assert {m.strip() for m in response.headers["access-control-allow-methods"].split(",")} == {
        "GET",
        "POST",
        "PUT",
    }
    allowed = {h.strip() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {"x-token", "content-type"} <= allowed
    assert response.headers["access-control-max-age"] == "123"
    assert "access-control-allow-credentials" not in response.headers
    assert "origin" in vary(response)


@pytest.mark.parametrize(
    ("origin", "method", "headers", "named"),
    [
        ("https://evil.example", "GET", None, ["origin 'https://evil.example'"]),
        (GOOD, "DELETE", None, ["method 'DELETE'"]),
        (GOOD, "GET", "X-Token, X-Other", ["headers 'x-other'"]),
        ("https://evil.example", "PATCH", "X-Other", ["origin", "method 'PATCH'", "'x-other'"]),
    ],
)
def test_preflight_denied_names_the_problem(
    serve: Callable[[str], httpx.Client],
    origin: str,
    method: str,
    headers: str | None,
    named: list[str],
) -> None:
    response = preflight(serve("app"), origin, method, headers)
    assert response.status_code == 400
    assert response.text.startswith("Disallowed CORS")
    for part in named:
        assert part in response.text
    assert "access-control-allow-origin" not in response.headers
    assert "origin" in vary(response)


def test_configured_origin_compares_case_insensitively(serve: Callable[[str], httpx.Client]) -> None:
    response = preflight(serve("app"), "https://other.example:8443", "GET")
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://other.example:8443"
    # Same host on another port is another origin.
    assert preflight(serve("app"), "https://other.example", "GET").status_code == 400


def test_simple_request_from_allowed_origin(serve: Callable[[str], httpx.Client]) -> None:
    response = serve("app").get("/json", headers={"origin": GOOD})
    assert response.status_code == 200
    assert response.json()["headers"]["origin"] == GOOD  # the app ran
    assert response.headers["access-control-allow-origin"] == GOOD
    assert response.headers["access-control-expose-headers"] == "X-Request-Id"
    assert "origin" in vary(response)


def test_simple_request_from_other_origin_gets_no_grant(serve: Callable[[str], httpx.Client]) -> None:
    response = serve("app").post("/json", headers={"origin": "https://evil.example"})
    assert response.status_code == 200  # the browser, not the server, withholds the body
    assert response.json()["method"] == "POST"
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-expose-headers" not in response.headers
    assert "origin" in vary(response)


def test_response_without_origin_still_varies(serve: Callable[[str], httpx.Client]) -> None:
    # Else a cache could serve this grant-less answer to an allowed origin.
    response = serve("app").get("/json")
    assert "access-control-allow-origin" not in response.headers
    assert "origin" in vary(response)


def test_options_without_request_method_reaches_the_app(serve: Callable[[str], httpx.Client]) -> None:
    response = serve("app").options("/json", headers={"origin": GOOD})
    assert response.status_code == 200
    assert response.json()["method"] == "OPTIONS"
    assert response.headers["access-control-allow-origin"] == GOOD


def test_app_vary_header_is_kept(serve: Callable[[str], httpx.Client]) -> None:
    response = serve("app").get("/vary", headers={"origin": GOOD, "accept-encoding": "identity"})
    assert vary(response) == {"accept-language", "origin"}


# -- wildcard ---------------------------------------------------------------------------


def test_wildcard_answers_everyone_the_same(serve: Callable[[str], httpx.Client]) -> None:
    client = serve("wildcard")
    with_origin = client.get("/json", headers={"origin": "https://anyone.example"})
    without = client.get("/json")
    for response in (with_origin, without):
        assert response.headers["access-control-allow-origin"] == "*"
        assert "origin" not in vary(response)
    pre = preflight(client, "https://anyone.example", "PATCH", "X-Anything")
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == "*"
    assert pre.headers["access-control-allow-methods"] == "*"
    assert pre.headers["access-control-allow-headers"] == "*"
    assert "origin" not in vary(pre)


# -- credentials ------------------------------------------------------------------------


def test_credentialed_preflight_echoes_instead_of_wildcards(serve: Callable[[str], httpx.Client]) -> None:
    response = preflight(serve("credentials"), GOOD, "PATCH", "X-A, X-B")
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == GOOD
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-allow-methods"] == "PATCH"
    assert response.headers["access-control-allow-headers"] == "x-a, x-b"
    assert "*" not in "".join(v for k, v in response.headers.items() if k.startswith("access-control"))
    assert vary(response) >= {"origin", "access-control-request-method", "access-control-request-headers"}


def test_credentialed_simple_request(serve: Callable[[str], httpx.Client]) -> None:
    response = serve("credentials").get("/json", headers={"origin": GOOD, "cookie": "a=1"})
    assert response.headers["access-control-allow-origin"] == GOOD
    assert response.headers["access-control-allow-credentials"] == "true"
    denied = serve("credentials").get("/json", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in denied.headers
    assert "access-control-allow-credentials" not in denied.headers


def test_wildcard_with_credentials_echoes_the_origin(serve: Callable[[str], httpx.Client]) -> None:
    client = serve("wildcard_credentials")
    response = client.get("/json", headers={"origin": "https://anyone.example"})
    assert response.headers["access-control-allow-origin"] == "https://anyone.example"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "origin" in vary(response)
    # Every sandboxed document is "null": a wildcard must not let them read with cookies.
    opaque = client.get("/json", headers={"origin": "null"})
    assert "access-control-allow-origin" not in opaque.headers
    assert preflight(client, "null", "GET").status_code == 400


# -- regex ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://api.good.example", True),
        ("https://a-b.good.example", True),
        ("https://good.example", False),
        ("https://api.good.example.evil.com", False),  # the regex must match the whole origin
        ("http://api.good.example", False),
    ],
)
def test_regex_origins(serve: Callable[[str], httpx.Client], origin: str, allowed: bool) -> None:
    client = serve("regex")
    response = client.get("/json", headers={"origin": origin})
    assert (response.headers.get("access-control-allow-origin") == origin) is allowed
    assert "origin" in vary(response)
    pre = preflight(client, origin, "DELETE")
    assert pre.status_code == (200 if allowed else 400)


# -- configuration errors (no server needed) --------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"allow_origins": ["https://example.com/"]},  # a trailing slash never matches
        {"allow_origins": ["example.com"]},
        {"allow_methods": ["GET POST"]},
        {"allow_headers": ["X Bad"]},
    ],
)
def test_bad_configuration_is_refused_at_startup(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        CORSMiddleware(echo, **kwargs)  # type: ignore[arg-type]
