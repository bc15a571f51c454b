"""FileResponse over real sockets (uvicorn and dartle): validators, conditionals, ranges."""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
from collections.abc import Callable, Iterator
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from dartle.web.fileresponse import content_disposition, parse_range
from tests.support.servers import ServerProcess, run_server
from tests.support.services import require_binary
from tests.web.apps import files_tree
from tests.web.apps.files_tree import ALPHABET, BIG, HELLO

Serve = Callable[[str], httpx.Client]


@pytest.fixture(scope="module")
def public(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return files_tree.build(tmp_path_factory.mktemp("files"))


@pytest.fixture(scope="module", params=["uvicorn", "dartle"])
def servers(request: pytest.FixtureRequest, public: Path) -> Iterator[Callable[[str], ServerProcess]]:
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


@pytest.fixture
def client(servers: Callable[[str], ServerProcess]) -> Iterator[httpx.Client]:
    # identity: these tests look at the bytes FileResponse sends, not at compression.
    with httpx.Client(
        base_url=servers("files").url, timeout=10, headers={"accept-encoding": "identity"}
    ) as c:
        yield c


def validators(client: httpx.Client, name: str = "hello.txt") -> tuple[str, str]:
    response = client.get(f"/file/{name}")
    return response.headers["etag"], response.headers["last-modified"]


# -- whole file ---------------------------------------------------------------------


def test_whole_file(client: httpx.Client, public: Path) -> None:
    response = client.get("/file/hello.txt")
    assert response.status_code == 200
    assert response.content == HELLO
    assert response.headers["content-length"] == str(len(HELLO))
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["accept-ranges"] == "bytes"
    st = (public / "hello.txt").stat()
    assert response.headers["etag"] == f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
    assert parsedate_to_datetime(response.headers["last-modified"]).timestamp() == int(st.st_mtime)
    assert "content-disposition" not in response.headers


def test_big_file_in_many_chunks(client: httpx.Client) -> None:
    response = client.get("/file/big.bin")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert int(response.headers["content-length"]) == len(BIG)
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(BIG).digest()


def test_empty_file(client: httpx.Client) -> None:
    response = client.get("/file/empty.txt")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == "0"


@pytest.mark.parametrize(
    ("name", "expected"),
    [("data.json", "application/json"), ("site/index.html", "text/html; charset=utf-8")],
)
def test_media_type_is_guessed(client: httpx.Client, name: str, expected: str) -> None:
    assert client.get(f"/file/{name}").headers["content-type"] == expected


def test_media_type_from_filename_and_explicit(client: httpx.Client) -> None:
    assert client.get("/file/big.bin?filename=x.json").headers["content-type"] == "application/json"
    assert client.get("/file/big.bin?type=image/png").headers["content-type"] == "image/png"


def test_head_sends_headers_only(client: httpx.Client) -> None:
    response = client.head("/file/big.bin")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(BIG))
    assert "etag" in response.headers


def test_missing_file_is_a_server_error(client: httpx.Client) -> None:
    assert client.get("/missing").status_code == 500


def test_pathsend_used_for_whole_file_only(servers: Callable[[str], ServerProcess]) -> None:
    with httpx.Client(base_url=servers("pathsend").url, timeout=10) as c:
        whole = c.get("/file/big.bin")
        assert whole.headers.get("x-served-by") == "pathsend"
        assert whole.content == BIG
        part = c.get("/file/big.bin", headers={"range": "bytes=0-9"})
        assert part.status_code == 206
        assert "x-served-by" not in part.headers
        assert part.content == BIG[:10]
        head = c.head("/file/big.bin")
        assert "x-served-by" not in head.headers
        etag = whole.headers["etag"]
        assert c.get("/file/big.bin", headers={"if-none-match": etag}).status_code == 304


# -- Content-Disposition --------------------------------------------------------------


def test_attachment_filename(client: httpx.Client) -> None:
    response = client.get("/file/hello.txt?filename=report.txt")
    assert response.headers["content-disposition"] == 'attachment; filename="report.txt"'
    inline = client.get("/file/hello.txt?filename=report.txt&inline=1")
    assert inline.headers["content-disposition"] == 'inline; filename="report.txt"'


def test_non_ascii_filename_uses_rfc5987(client: httpx.Client) -> None:
    name = "naïve résumé €.txt"
    response = client.get("/file/hello.txt", params={"filename": name})
    value = response.headers["content-disposition"]
    assert value.startswith('attachment; filename="na_ve r_sum_ _.txt"; ')
    star = value.split("filename*=", 1)[1]
    assert star.startswith("UTF-8''")
    assert unquote(star[len("UTF-8''") :], encoding="utf-8") == name


def test_content_disposition_escapes() -> None:
    assert content_disposition('a"b\\c.txt') == 'attachment; filename="a\\"bc.txt"'
    assert content_disposition("../../etc/passwd") == 'attachment; filename="....etcpasswd"'


# -- conditional requests -------------------------------------------------------------


def test_if_none_match(client: httpx.Client) -> None:
    etag, _ = validators(client)
    for value in (etag, f'"nope", {etag}', "W/" + etag, "*"):
        response = client.get("/file/hello.txt", headers={"if-none-match": value})
        assert response.status_code == 304, value
        assert response.content == b""
        assert response.headers["etag"] == etag
        assert "content-type" not in response.headers
    assert client.get("/file/hello.txt", headers={"if-none-match": '"nope"'}).status_code == 200
    assert client.head("/file/hello.txt", headers={"if-none-match": etag}).status_code == 304


def test_if_modified_since(client: httpx.Client) -> None:
    _, last_modified = validators(client)
    assert client.get("/file/hello.txt", headers={"if-modified-since": last_modified}).status_code == 304
    earlier = formatdate(parsedate_to_datetime(last_modified).timestamp() - 60, usegmt=True)
    assert client.get("/file/hello.txt", headers={"if-modified-since": earlier}).status_code == 200
    # A date that does not parse is ignored.
    assert client.get("/file/hello.txt", headers={"if-modified-since": "yesterday"}).status_code == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110 section 13.2.2).
    both = {"if-none-match": '"other"', "if-modified-since": last_modified}
    assert client.get("/file/hello.txt", headers=both).status_code == 200


def test_if_match(client: httpx.Client) -> None:
    etag, _ = validators(client)
    assert client.get("/file/hello.txt", headers={"if-match": etag}).status_code == 200
    assert client.get("/file/hello.txt", headers={"if-match": "*"}).status_code == 200
    failed = client.get("/file/hello.txt", headers={"if-match": '"other"'})
    assert failed.status_code == 412
    assert failed.content == b""
    # If-Match compares strongly: a weak tag never matches.
    assert client.get("/file/hello.txt", headers={"if-match": "W/" + etag}).status_code == 412


def test_if_unmodified_since(client: httpx.Client) -> None:
    _, last_modified = validators(client)
    assert client.get("/file/hello.txt", headers={"if-unmodified-since": last_modified}).status_code == 200
    earlier = formatdate(parsedate_to_datetime(last_modified).timestamp() - 60, usegmt=True)
    assert client.get("/file/hello.txt", headers={"if-unmodified-since": earlier}).status_code == 412


def test_changed_file_gets_a_new_etag(client: httpx.Client, public: Path) -> None:
    target = public / "changing.txt"
    target.write_bytes(b"version one")
    first = client.get("/file/changing.txt").headers["etag"]
    target.write_bytes(b"version two, longer")
    response = client.get("/file/changing.txt", headers={"if-none-match": first})
    assert response.status_code == 200
    assert response.content == b"version two, longer"
    assert response.headers["etag"] != first


# -- ranges ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "start", "end"),
    [
        ("bytes=10-19", 10, 19),
        ("bytes=1000-", 1000, 1023),
        ("bytes=-24", 1000, 1023),
        ("bytes=1000-5000", 1000, 1023),  # clamped to the end
        ("bytes=-5000", 0, 1023),
        ("bytes=0-9, 5-14", 0, 14),  # overlapping ranges merge into one
        ("BYTES = 3-3", 3, 3),
    ],
)
def test_single_range(client: httpx.Client, spec: str, start: int, end: int) -> None:
    response = client.get("/file/alphabet.bin", headers={"range": spec})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {start}-{end}/{len(ALPHABET)}"
    assert response.headers["content-length"] == str(end - start + 1)
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.content == ALPHABET[start : end + 1]


def parse_multipart(response: httpx.Response) -> list[tuple[str, str, bytes]]:
    """(content-type, content-range, body) of each part of a multipart/byteranges body."""
    content_type = response.headers["content-type"]
    assert content_type.startswith("multipart/byteranges; boundary=")
    boundary = content_type.split("boundary=", 1)[1].encode()
    body = response.content
    assert body.endswith(b"--" + boundary + b"--\r\n")
    parts = []
    for chunk in body.split(b"--" + boundary)[1:-1]:
        assert chunk.startswith(b"\r\n") and chunk.endswith(b"\r\n")
        head, _, data = chunk[2:-2].partition(b"\r\n\r\n")
        fields = dict(line.split(": ", 1) for line in head.decode().split("\r\n"))
        parts.append((fields["Content-Type"], fields["Content-Range"], data))
    return parts


def test_multiple_ranges(client: httpx.Client) -> None:
    response = client.get("/file/alphabet.bin", headers={"range": "bytes=0-9,100-199,-10"})
    assert response.status_code == 206
    assert int(response.headers["content-length"]) == len(response.content)
    assert "content-range" not in response.headers
    size = len(ALPHABET)
    assert parse_multipart(response) == [
        ("application/octet-stream", f"bytes 0-9/{size}", ALPHABET[0:10]),
        ("application/octet-stream", f"bytes 100-199/{size}", ALPHABET[100:200]),
        ("application/octet-stream", f"bytes {size - 10}-{size - 1}/{size}", ALPHABET[-10:]),
    ]


def test_multiple_ranges_across_chunks(client: httpx.Client) -> None:
    response = client.get("/file/big.bin", headers={"range": "bytes=1-70000,200000-"})
    parts = parse_multipart(response)
    assert [p[2] for p in parts] == [BIG[1:70001], BIG[200000:]]


@pytest.mark.parametrize("spec", [f"bytes={len(ALPHABET)}-", "bytes=5000-6000", "bytes=-0"])
def test_unsatisfiable_range(client: httpx.Client, spec: str) -> None:
    response = client.get("/file/alphabet.bin", headers={"range": spec})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(ALPHABET)}"
    assert response.content == b""


@pytest.mark.parametrize("spec", ["bytes=abc", "items=0-5", "bytes=5-1", "bytes=", "bytes=1-2-3"])
def test_invalid_range_is_ignored(client: httpx.Client, spec: str) -> None:
    response = client.get("/file/alphabet.bin", headers={"range": spec})
    assert response.status_code == 200
    assert response.content == ALPHABET


def test_too_many_ranges_get_the_whole_file(client: httpx.Client) -> None:
    spec = "bytes=" + ",".join(f"{i}-{i}" for i in range(0, 200, 2))
    response = client.get("/file/alphabet.bin", headers={"range": spec})
    assert response.status_code == 200
    assert response.content == ALPHABET


def test_if_range(client: httpx.Client) -> None:
    etag, last_modified = validators(client, "alphabet.bin")
    for validator in (etag, last_modified):
        response = client.get("/file/alphabet.bin", headers={"range": "bytes=0-3", "if-range": validator})
        assert response.status_code == 206, validator
        assert response.content == ALPHABET[:4]
    earlier = formatdate(parsedate_to_datetime(last_modified).timestamp() - 60, usegmt=True)
    for stale in ('"stale"', "W/" + etag, earlier):
        response = client.get("/file/alphabet.bin", headers={"range": "bytes=0-3", "if-range": stale})
        assert response.status_code == 200, stale
        assert response.content == ALPHABET


def test_head_ignores_range(client: httpx.Client) -> None:
    response = client.head("/file/alphabet.bin", headers={"range": "bytes=0-3"})
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(ALPHABET))


def test_curl_ranges(servers: Callable[[str], ServerProcess]) -> None:
    curl = require_binary("curl")
    url = servers("files").url + "/file/big.bin"
    single = subprocess.run(
        [curl, "-sS", "--max-time", "10", "-r", "100-199", url], capture_output=True, check=True
    )
    assert single.stdout == BIG[100:200]
    # curl resumes a download with a range request and appends what is missing.
    resumed = subprocess.run(
        [curl, "-sS", "--max-time", "10", "-C", "250000", url], capture_output=True, check=True
    )
    assert resumed.stdout == BIG[250000:]


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-0", 10, [(0, 0)]),
        ("bytes=9-", 10, [(9, 9)]),
        ("bytes=10-", 10, []),
        ("bytes=-3", 10, [(7, 9)]),
        ("bytes=-3", 0, []),
        ("bytes=0-1,3-4,2-2", 10, [(0, 4)]),
        ("bytes=5-6,0-1", 10, [(0, 1), (5, 6)]),
        ("bytes=0--1", 10, None),
        ("bytes=a-1", 10, None),
        ("bytes=+1-2", 10, None),
        ("bits=0-1", 10, None),
    ],
)
def test_parse_range(header: str, size: int, expected: list[tuple[int, int]] | None) -> None:
    assert parse_range(header, size) == expected
