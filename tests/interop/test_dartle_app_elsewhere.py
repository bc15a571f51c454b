"""The dartle framework's sample app on other ASGI servers: hypercorn and granian.

tests/web runs the framework's behavioural tests (test_framework_http.py and
test_framework_websocket.py) against tests.web.apps.core:app on uvicorn and on dartle.
This module collects the very same test functions again, with `core_server` (and
`behind_proxy`) served by hypercorn and granian from tests/interop/.venv: a test added
there runs here too. Where a server itself behaves differently the difference is
listed in SERVER_DIFFERENCES and expected to fail, strictly (so a fix shows up).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.interop.conftest import serve
from tests.support.servers import ServerProcess
from tests.web import test_framework_http, test_framework_websocket

SERVERS = ("hypercorn", "granian")
CORE_APP = "tests.web.apps.core:app"
ROOT_PATH_FLAGS = {"hypercorn": ("--root-path", "/prefix"), "granian": ("--url-path-prefix", "/prefix")}

# (server, test name) -> why that server gives another answer than uvicorn and dartle
_ROOT_PATH = (
    "with a root path the server gives scope['path'] without it ('/inspect', root_path "
    "'/prefix'), where uvicorn >= 0.26 and dartle give '/prefix/inspect'; the framework "
    "routes either way, but builds request.url from the path alone, so the prefix is lost"
)
SERVER_DIFFERENCES: dict[tuple[str, str], str] = {
    ("hypercorn", "test_server_root_path"): _ROOT_PATH,
    ("granian", "test_server_root_path"): _ROOT_PATH,
    ("granian", "test_echo_text_bytes_subprotocol_and_headers"): (
        "granian 2.8.7 claims websocket spec_version 2.3 but drops the websocket.accept "
        "'headers' (added in 2.1)"
    ),
}

for _module in (test_framework_http, test_framework_websocket):
    for _name, _test in vars(_module).items():
        if _name.startswith("test_") and callable(_test):
            globals()[_name] = _test


def _expect_difference(request: pytest.FixtureRequest, server: str) -> None:
    reason = SERVER_DIFFERENCES.get((server, request.node.originalname))
    if reason is not None:
        request.node.add_marker(pytest.mark.xfail(reason=f"{server}: {reason}", strict=True))


@pytest.fixture(scope="module", params=SERVERS)
def core_server(request: pytest.FixtureRequest, interop_python: Path) -> Iterator[ServerProcess]:
    with serve(interop_python, request.param, CORE_APP) as server:
        yield server


@pytest.fixture(autouse=True)
def _known_server_differences(request: pytest.FixtureRequest) -> None:
    for name in ("core_server", "behind_proxy"):
        if name in request.fixturenames:
            callspec = getattr(request.node, "callspec", None)
            if callspec is not None and name in callspec.params:
                _expect_difference(request, callspec.params[name])


@pytest.fixture
def core_http(core_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=core_server.url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module", params=SERVERS)
def behind_proxy(request: pytest.FixtureRequest, interop_python: Path) -> Iterator[ServerProcess]:
    with serve(interop_python, request.param, CORE_APP, *ROOT_PATH_FLAGS[request.param]) as server:
        yield server
