"""`dartle run --interface` (and its detection) for ASGI 2 apps; WSGI is in test_wsgi.py."""

from __future__ import annotations

import httpx
import pytest

from tests.support.servers import run_server

STRICT_APPS = "tests.asgi.apps.strict_apps"


@pytest.mark.parametrize(("target", "flags", "body"), [
    ("LegacyApp", (), "asgi2 class"),
    ("legacy_function", (), "asgi2 function"),
    ("legacy_function", ("--interface", "asgi2"), "asgi2 function"),
    ("LegacyApp", ("--interface", "asgi2", "--strict-asgi"), "asgi2 class"),
])
def test_asgi2_double_callables(target: str, flags: tuple[str, ...], body: str) -> None:
    with run_server(f"{STRICT_APPS}:{target}", *flags) as process:
        r = httpx.get(process.url + "/", timeout=10)
    assert (r.status_code, r.text) == (200, body)


def test_interface_asgi3_takes_the_app_as_it_is() -> None:
    with run_server(f"{STRICT_APPS}:app", "--interface", "asgi3") as process:
        assert httpx.get(process.url + "/ok", timeout=10).text == "fine"
