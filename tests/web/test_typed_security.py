"""Security helpers over real sockets: API keys, Bearer, Basic, the OAuth2 password flow
and scopes, with the 401/400/403 answers and challenges the RFCs ask for."""

from __future__ import annotations

import base64
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


def test_api_key_header_and_optional_query_key(http: httpx.Client) -> None:
    r = http.get("/typed/key")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "APIKey"
    assert r.json() == {"detail": "Not authenticated"}
    assert http.get("/typed/key", headers={"x-api-key": "k1"}).json() == {"key": "k1", "query": None}
    r = http.get("/typed/key", headers={"x-api-key": "k1"}, params={"api_key": "q1"})
    assert r.json() == {"key": "k1", "query": "q1"}


def test_api_key_cookie(http: httpx.Client) -> None:
    assert http.get("/typed/key-cookie").status_code == 401
    assert http.get("/typed/key-cookie", headers={"cookie": "key=c1"}).json() == {"key": "c1"}


def test_bearer_missing_wrong_scheme_and_empty_token(http: httpx.Client) -> None:
    r = http.get("/typed/bearer")
    assert (r.status_code, r.headers["www-authenticate"]) == (401, 'Bearer realm="typed"')
    r = http.get("/typed/bearer", headers={"authorization": "Basic YTpi"})
    assert (r.status_code, r.headers["www-authenticate"]) == (401, 'Bearer realm="typed"')
    # RFC 6750 section 3.1: a malformed request is invalid_request, 400.
    r = http.get("/typed/bearer", headers={"authorization": "Bearer"})
    assert r.status_code == 400
    assert r.headers["www-authenticate"].startswith('Bearer realm="typed", error="invalid_request"')
    r = http.get("/typed/bearer", headers={"authorization": "bearer abc.def"})
    assert r.json() == {"scheme": "Bearer", "token": "abc.def"}


def test_basic(http: httpx.Client) -> None:
    r = http.get("/typed/basic")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Basic realm="typed tests", charset="UTF-8"'
    r = http.get("/typed/basic", auth=("zoë", "pa:ss"))
    assert r.json() == {"username": "zoë", "password": "pa:ss"}
    for broken in ("Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Basic " + "/w==" * 1):
        r = http.get("/typed/basic", headers={"authorization": broken})
        assert r.status_code == 401, broken
        assert r.headers["www-authenticate"].startswith("Basic realm=")


def test_oauth2_password_flow_and_scopes(http: httpx.Client) -> None:
    r = http.post("/typed/token", data={"username": "ada", "password": "wrong"})
    assert r.status_code == 400
    r = http.post("/typed/token", data={"username": "ada", "password": "lovelace", "grant_type": "code"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "grant_type"]
    r = http.post(
        "/typed/token",
        data={
            "username": "ada",
            "password": "lovelace",
            "grant_type": "password",
            "scope": "items:read items:write",
        },
    )
    token = r.json()["access_token"]
    assert token == "ada:items:read"
    auth = {"authorization": f"Bearer {token}"}
    assert http.get("/typed/me", headers=auth).json() == {"user": "ada"}
    r = http.post("/typed/me/items", headers=auth)
    assert r.status_code == 403
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="typed", error="insufficient_scope"')
    assert 'scope="items:write"' in challenge
    r = http.get("/typed/me", headers={"authorization": "Bearer eve:"})
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    r = http.get("/typed/me")
    assert (r.status_code, r.headers["www-authenticate"]) == (401, "Bearer")
