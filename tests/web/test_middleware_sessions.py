"""SessionMiddleware over real sockets (uvicorn and dartle): signed cookies, tampering, expiry."""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from dartle.web.middleware import SessionMiddleware
from tests.support.servers import run_server
from tests.web.apps.mw_sessions import SECRET, session_app

Serve = Callable[[str], httpx.Client]


@pytest.fixture(scope="module", params=["uvicorn", "dartle"])
def serve(request: pytest.FixtureRequest) -> Iterator[Serve]:
    clients: dict[str, httpx.Client] = {}
    with contextlib.ExitStack() as stack:

        def get(name: str) -> httpx.Client:
            if name not in clients:
                server = stack.enter_context(
                    run_server(f"tests.web.apps.mw_sessions:{name}", kind=request.param)
                )
                # No cookie jar: each test sends exactly the cookie it means to.
                clients[name] = stack.enter_context(
                    httpx.Client(base_url=server.url, timeout=10, cookies=None)
                )
            return clients[name]

        yield get


def ask(client: httpx.Client, path: str, cookie: str | None = None) -> httpx.Response:
    client.cookies.clear()
    headers = {} if cookie is None else {"cookie": f"session={cookie}"}
    return client.get(path, headers=headers)


def set_cookie(response: httpx.Response, name: str = "session") -> tuple[str, dict[str, str]]:
    """The value and the attributes (lowercase names) of the one Set-Cookie for `name`."""
    lines = [v for v in response.headers.get_list("set-cookie") if v.startswith(name + "=")]
    assert len(lines) == 1, response.headers.get_list("set-cookie")
    first, *attrs = (part.strip() for part in lines[0].split(";"))
    attributes = {}
    for attr in attrs:
        key, _, value = attr.partition("=")
        attributes[key.lower()] = value
    return first.partition("=")[2], attributes


def signer(**kwargs: object) -> SessionMiddleware:
    """The middleware's own codec, as the server is configured (or otherwise)."""
    options = {"secret_key": SECRET, "max_age": 3600, **kwargs}
    return SessionMiddleware(session_app, **options)  # type: ignore[arg-type]


def test_round_trip(serve: Serve) -> None:
    client = serve("app")
    first = ask(client, "/set?user=ann")
    assert first.json() == {"user": "ann"}
    cookie, attributes = set_cookie(first)
    assert attributes["max-age"] == "3600"
    assert attributes["path"] == "/"
    assert attributes["samesite"] == "Lax"
    assert "httponly" in attributes
    assert "secure" not in attributes

    assert ask(client, "/get", cookie).json() == {"user": "ann"}
    second = ask(client, "/set?n=2", cookie)
    assert second.json() == {"user": "ann", "n": "2"}
    cookie2, _ = set_cookie(second)
    assert ask(client, "/get", cookie2).json() == {"user": "ann", "n": "2"}


def test_clearing_deletes_the_cookie(serve: Serve) -> None:
    client = serve("app")
    cookie, _ = set_cookie(ask(client, "/set?user=ann"))
    cleared = ask(client, "/clear", cookie)
    assert cleared.json() == {}
    value, attributes = set_cookie(cleared)
    assert value == ""
    assert attributes["max-age"] == "0"
    assert "1970" in attributes["expires"]


def test_no_session_no_cookie(serve: Serve) -> None:
    response = ask(serve("app"), "/get")
    assert response.json() == {}
    assert "set-cookie" not in response.headers


def test_cookie_made_with_the_key_is_accepted(serve: Serve) -> None:
    # The positive control for the tampering tests below.
    cookie = signer().encode({"user": "bob"})
    assert ask(serve("app"), "/get", cookie).json() == {"user": "bob"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def tampered_cookies() -> dict[str, str]:
    genuine = signer().encode({"user": "bob"})
    payload, timestamp, signature = genuine.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    return {
        "payload swapped": ".".join((_b64(json.dumps({"user": "admin"}).encode()), timestamp, signature)),
        "timestamp moved": ".".join((payload, _b64((int(time.time()) + 99).to_bytes(8, "big")), signature)),
        "signature flipped": ".".join((payload, timestamp, flipped)),
        "signature dropped": f"{payload}.{timestamp}",
        "other secret": signer(secret_key="another-secret").encode({"user": "bob"}),
        "other cookie name": signer(session_cookie="other").encode({"user": "bob"}),
        "not base64": "!!!.???.###",
        "garbage": "x",
        # Signed with the right key, but JSON that is not an object.
        "signed list": ".".join(
            (_b64(b"[1]"), timestamp, signer()._signature(_b64(b"[1]").encode(), timestamp.encode()).decode())
        ),
    }


@pytest.mark.parametrize("case", sorted(tampered_cookies()))
def test_tampered_cookie_gives_an_empty_session(serve: Serve, case: str) -> None:
    response = ask(serve("app"), "/get", tampered_cookies()[case])
    assert response.status_code == 200
    assert response.json() == {}


def test_expired_cookie_gives_an_empty_session(serve: Serve) -> None:
    old = signer().encode({"user": "bob"}, now=time.time() - 3600 - 60)
    assert ask(serve("app"), "/get", old).json() == {}
    recent = signer().encode({"user": "bob"}, now=time.time() - 3600 + 60)
    assert ask(serve("app"), "/get", recent).json() == {"user": "bob"}


def test_cookie_attributes(serve: Serve) -> None:
    client = serve("strict")
    response = client.get("/set?user=ann")
    cookie, attributes = set_cookie(response, "sid")
    assert attributes["samesite"] == "Strict"
    assert attributes["domain"] == "example.com"
    assert "secure" in attributes and "httponly" in attributes
    assert "max-age" not in attributes and "expires" not in attributes  # a browser-session cookie
    client.cookies.clear()
    assert client.get("/get", headers={"cookie": f"sid={cookie}"}).json() == {"user": "ann"}
    # Without max_age the timestamp is not checked: an old cookie is still good.
    strict = SessionMiddleware(session_app, secret_key=SECRET, session_cookie="sid", max_age=None)
    ancient = strict.encode({"user": "old"}, now=1_000_000)
    client.cookies.clear()
    assert client.get("/get", headers={"cookie": f"sid={ancient}"}).json() == {"user": "old"}


def test_configuration_errors() -> None:
    with pytest.raises(ValueError):
        SessionMiddleware(session_app, secret_key="")
    with pytest.raises(ValueError):
        SessionMiddleware(session_app, secret_key="k", same_site="none")
    with pytest.raises(TypeError, match="JSON"):
        signer().encode({"when": object()})
