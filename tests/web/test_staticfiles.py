"""StaticFiles over real sockets (uvicorn and dartle).

Traversal attempts go over a raw socket, so that no client normalises `..` or
re-encodes the path before the server sees it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from dartle.web.staticfiles import StaticFiles
from tests.server.rawhttp import RawConn, Response, request
from tests.support.servers import ServerProcess, run_server
from tests.web.apps import files_tree
from tests.web.apps.files_tree import HELLO, INDEX, NOT_FOUND_PAGE, SECRET

Serve = Callable[[str], ServerProcess]


@pytest.fixture(scope="module")
def public(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return files_tree.build(tmp_path_factory.mktemp("static"))


@pytest.fixture(scope="module", params=["uvicorn", "dartle"])
def serve(request: pytest.FixtureRequest, public: Path) -> Iterator[Serve]:
    started: dict[str, ServerProcess] = {}
    with contextlib.ExitStack() as stack:

        def get(name: str) -> ServerProcess:
            if name not in started:
                started[name] = stack.enter_context(
                    run_server(
                        f"tests.web.apps.files_app:{name}",
                        kind=request.param,
                        env={"DARTLE_TEST_FILES": str(public)},
                    )
                )
            return started[name]

        yield get


def raw(server: ServerProcess, target: str, method: str = "GET") -> Response:
    conn = RawConn.tcp(server.host, server.port)
    try:
        conn.send(request(method, target, {"Connection": "close"}))
        return conn.read_response(method)
    finally:
        conn.close()


def get(server: ServerProcess, path: str, **kwargs: object) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=10, follow_redirects=False) as client:
        return client.get(path, **kwargs)  # type: ignore[arg-type]


def test_serves_files(serve: Serve) -> None:
    response = get(serve("static"), "/hello.txt")
    assert response.status_code == 200
    assert response.content == HELLO
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    etag = response.headers["etag"]
    assert get(serve("static"), "/hello.txt", headers={"if-none-match": etag}).status_code == 304
    ranged = get(serve("static"), "/hello.txt", headers={"range": "bytes=0-4"})
    assert (ranged.status_code, ranged.content) == (206, HELLO[:5])
    assert get(serve("static"), "/site/nested/page.html").content == b"<p>nested</p>"


def test_head(serve: Serve) -> None:
    response = raw(serve("static"), "/hello.txt", "HEAD")
    assert response.status == 200
    assert response.header("content-length") == str(len(HELLO))
    assert response.body == b""


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_not_allowed(serve: Serve, method: str) -> None:
    response = raw(serve("static"), "/hello.txt", method)
    assert response.status == 405
    assert response.header("allow") == "GET, HEAD"


@pytest.mark.parametrize(
    "target",
    [
        "/missing.txt",
        "/site/nested/",  # a directory without an index.html
        "/site/nested",
        "/hello.txt/more",
        "/pipe",  # a FIFO would block a reader forever
    ],
)
def test_not_found(serve: Serve, target: str) -> None:
    response = raw(serve("static"), target)
    assert response.status == 404
    assert response.body == b"Not Found"


TRAVERSALS = [
    "/../secret.txt",
    "/site/../../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/site/%2e%2e/%2e%2e/secret.txt",
    "/site/..%2f..%2fsecret.txt",
    "/..%5csecret.txt",
    "/site\\..\\..\\secret.txt",
    "/hello.txt%00.png",
    "/%2e%2e%2fsecret.txt",
    "/outside-link.txt",  # a symlink leading out of the directory
    "/outside-dir/key.txt",
    "//etc/passwd",
    "/c:/windows/win.ini",
]


@pytest.mark.parametrize("target", TRAVERSALS)
@pytest.mark.parametrize("app", ["static", "static_html"])
def test_no_way_out_of_the_directory(serve: Serve, app: str, target: str) -> None:
    response = raw(serve(app), target)
    assert SECRET not in response.body
    assert response.status == 404, (response.status, response.body[:100])
    assert response.body == (NOT_FOUND_PAGE if app == "static_html" else b"Not Found")


def test_traversal_lookups_are_refused(public: Path) -> None:
    """The same attempts, as decoded paths handed straight to the lookup."""
    app = StaticFiles(directory=public)
    for path in (
        "/../secret.txt",
        "/site/../../secret.txt",
        "/..\\secret.txt",
        "/hello.txt\x00.png",
        "/outside-link.txt",
        "/outside-dir/key.txt",
        "/C:/x",
    ):
        assert app.lookup(path) is None, path
    assert app.lookup("/hello.txt") is not None  # the positive control


def test_encoded_name_is_a_name(serve: Serve) -> None:
    # "%252e%252e" decodes once, to the literal file name "%2e%2e": no traversal.
    response = raw(serve("static"), "/%252e%252e")
    assert response.status == 200
    assert response.body == b"a file really named %2e%2e\n"


def test_symlink_inside_is_served(serve: Serve) -> None:
    assert get(serve("static"), "/inside-link.txt").content == HELLO


def test_follow_symlink_allows_links_out(serve: Serve) -> None:
    assert get(serve("static_follow"), "/outside-link.txt").content == SECRET
    assert get(serve("static_follow"), "/outside-dir/key.txt").content == SECRET
    # Following links does not open the door to "..".
    assert raw(serve("static_follow"), "/../secret.txt").status == 404
    assert raw(serve("static_follow"), "/%2e%2e/secret.txt").status == 404


@pytest.mark.parametrize("app", ["static", "static_html"])
def test_directory_index(serve: Serve, app: str) -> None:
    server = serve(app)
    index = get(server, "/site/")
    assert index.status_code == 200
    assert index.content == INDEX
    assert index.headers["content-type"] == "text/html; charset=utf-8"
    redirect = get(server, "/site?x=1")
    assert redirect.status_code == 307
    assert redirect.headers["location"] == f"{server.url}/site/?x=1"
    assert get(server, "/site/index.html").content == INDEX


def test_html_mode_404_page(serve: Serve) -> None:
    server = serve("static_html")
    missing = get(server, "/nothing/here")
    assert missing.status_code == 404
    assert missing.content == NOT_FOUND_PAGE
    assert missing.headers["content-type"] == "text/html; charset=utf-8"
    assert "etag" not in missing.headers
    # A directory without an index.html.
    assert get(server, "/site/nested/").content == NOT_FOUND_PAGE


def test_mounted_in_an_app(serve: Serve) -> None:
    server = serve("mounted")
    assert get(server, "/static/hello.txt").content == HELLO
    assert get(server, "/static/site/").content == INDEX
    redirect = get(server, "/static/site")
    assert redirect.status_code == 307
    assert redirect.headers["location"] == f"{server.url}/static/site/"
    assert get(server, "/static/nope").content == NOT_FOUND_PAGE
    assert SECRET not in raw(server, "/static/%2e%2e/secret.txt").body


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="does not exist"):
        StaticFiles(directory=tmp_path / "absent")
    lenient = StaticFiles(directory=tmp_path / "absent", check_dir=False)
    assert lenient.lookup("/anything") is None
