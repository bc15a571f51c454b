"""GZipMiddleware (gzip, br, zstd) over real sockets, on uvicorn and on the dartle server."""

from __future__ import annotations

import contextlib
import gzip
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dartle.web.middleware.compression import (
    GZipMiddleware,
    available_encodings,
    negotiate_encoding,
)
from tests.support.servers import ServerProcess, run_server
from tests.web.apps import mw_common
from tests.web.apps.mw_common import echo, text_of

Serve = Callable[[str], ServerProcess]


@pytest.fixture(scope="module", params=["uvicorn", "dartle"])
def serve(request: pytest.FixtureRequest) -> Iterator[Serve]:
    servers: dict[str, ServerProcess] = {}
    with contextlib.ExitStack() as stack:

        def get(name: str) -> ServerProcess:
            if name not in servers:
                servers[name] = stack.enter_context(
                    run_server(f"tests.web.apps.mw_compression:{name}", kind=request.param)
                )
            return servers[name]

        yield get


def raw_get(
    server: ServerProcess, path: str, accept_encoding: str | None, method: str = "GET"
) -> httpx.Response:
    """The response with its body exactly as sent (httpx does not decode `.content` here)."""
    headers = {} if accept_encoding is None else {"accept-encoding": accept_encoding}
    with httpx.Client(base_url=server.url, timeout=10) as client:
        request = client.build_request(method, path, headers=headers)
        if accept_encoding is None:
            del request.headers["accept-encoding"]  # httpx adds its own by default
        response = client.send(request, stream=True)
        try:
            response.raw_body = b"".join(response.iter_raw())  # type: ignore[attr-defined]
        finally:
            response.close()
    return response


def decoder(coding: str) -> Any:
    """An incremental decompressor with a `.decompress(bytes) -> bytes` method."""
    if coding == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if coding == "br":
        import brotli

        return brotli.Decompressor()
    if coding == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj()
    raise AssertionError(coding)


def decode(coding: str, data: bytes) -> bytes:
    d = decoder(coding)
    return d.process(data) if hasattr(d, "process") else d.decompress(data)


def vary(response: httpx.Response) -> set[str]:
    return {p.strip().lower() for v in response.headers.get_list("vary") for p in v.split(",")}


CODINGS = available_encodings()


@pytest.mark.parametrize("coding", CODINGS)
def test_each_coding_round_trips(serve: Serve, coding: str) -> None:
    response = raw_get(serve("app"), "/text?size=5000", coding)
    assert response.headers["content-encoding"] == coding
    body = response.raw_body  # type: ignore[attr-defined]
    assert int(response.headers["content-length"]) == len(body) < 5000
    assert decode(coding, body) == text_of(5000)
    assert "accept-encoding" in vary(response)


def test_negotiation_follows_q_values(serve: Serve) -> None:
    server = serve("app")
    assert raw_get(server, "/text", "gzip;q=0.5, identity;q=0.1").headers["content-encoding"] == "gzip"
    # gzip refused with q=0 and nothing else offered: identity, but still Vary.
    refused = raw_get(server, "/text", "gzip;q=0, deflate")
    assert "content-encoding" not in refused.headers
    assert refused.raw_body == text_of(1000)  # type: ignore[attr-defined]
    assert "accept-encoding" in vary(refused)
    # The client prefers identity to gzip.
    assert "content-encoding" not in raw_get(server, "/text", "gzip;q=0.2, identity").headers
    # No Accept-Encoding at all: identity.
    assert "content-encoding" not in raw_get(server, "/text", None).headers
    # "*" stands for anything not listed.
    assert raw_get(server, "/text", "*").headers["content-encoding"] == CODINGS[0]
    if "br" in CODINGS:
        picked = raw_get(server, "/text", "gzip;q=0.4, br;q=0.8").headers["content-encoding"]
        assert picked == "br"


def test_gzip_only_instance_ignores_other_codings(serve: Serve) -> None:
    response = raw_get(serve("gzip_only"), "/text?size=3000", "br, zstd, gzip;q=0.1")
    assert response.headers["content-encoding"] == "gzip"
    assert gzip.decompress(response.raw_body) == text_of(3000)  # type: ignore[attr-defined]
    assert "content-encoding" not in raw_get(serve("gzip_only"), "/text", "br, zstd").headers


def test_small_body_is_left_alone(serve: Serve) -> None:
    response = raw_get(serve("app"), "/text?size=499", "gzip")
    assert "content-encoding" not in response.headers
    assert response.raw_body == text_of(499)  # type: ignore[attr-defined]
    # The size alone decided, not the client's codings: nothing varies.
    assert "accept-encoding" not in vary(response)
    # A streamed body never is known to be small: it is compressed.
    streamed = raw_get(serve("app"), "/small-stream", "gzip")
    assert streamed.headers["content-encoding"] == "gzip"
    assert gzip.decompress(streamed.raw_body) == b"0123456789abcdefghij"  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", ["/sse", "/png", "/encoded", "/notransform"])
def test_excluded_responses_are_left_alone(serve: Serve, path: str) -> None:
    response = raw_get(serve("app"), path, "gzip, br, zstd")
    if path == "/encoded":
        assert response.headers["content-encoding"] == "gzip"
        assert gzip.decompress(response.raw_body) == text_of(2000)  # type: ignore[attr-defined]
    else:
        assert "content-encoding" not in response.headers
        assert response.raw_body == text_of(2000)  # type: ignore[attr-defined]
    assert int(response.headers["content-length"]) == len(response.raw_body)  # type: ignore[attr-defined]


def test_strong_etag_is_weakened(serve: Serve) -> None:
    compressed = raw_get(serve("app"), "/etag", "gzip")
    assert compressed.headers["etag"] == 'W/"v1"'
    plain = raw_get(serve("app"), "/etag", "identity")
    assert plain.headers["etag"] == '"v1"'


def test_app_vary_is_merged(serve: Serve) -> None:
    response = raw_get(serve("app"), "/vary", "gzip")
    assert response.headers["content-encoding"] == "gzip"
    assert vary(response) == {"accept-language", "accept-encoding"}


def test_head_is_not_compressed(serve: Serve) -> None:
    response = raw_get(serve("app"), "/text?size=5000", "gzip", method="HEAD")
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert response.headers["content-length"] == "5000"
    assert "accept-encoding" in vary(response)


@pytest.mark.parametrize("coding", CODINGS)
def test_streamed_chunks_arrive_before_the_stream_ends(serve: Serve, coding: str) -> None:
    """Chunk one must be decodable by the client while the app still waits to send chunk two.

    The app holds chunk two until the test requests /release; if the middleware kept
    chunk one in its compressor, the client would wait for it forever (the read times out
    and the test fails) instead of ever sending that release.
    """
    server = serve("app")
    key = uuid.uuid4().hex
    headers = {"accept-encoding": coding}
    with (
        httpx.Client(base_url=server.url, timeout=10) as client,
        client.stream("GET", f"/stream?id={key}", headers=headers) as response,
    ):
        assert response.headers["content-encoding"] == coding
        assert "content-length" not in response.headers
        d = decoder(coding)
        feed = d.process if hasattr(d, "process") else d.decompress
        received = b""
        raw = response.iter_raw()
        while len(received) < len(b"first:") + 200:
            received += feed(next(raw))
        assert received == b"first:" + text_of(200)
        # Only now may the app go on.
        assert client.get(f"/release?id={key}").text == "released"
        for chunk in raw:
            received += feed(chunk)
    assert received == b"first:" + text_of(200) + b"second:" + text_of(200)


def test_file_response_through_compression(serve: Serve) -> None:
    source = Path(mw_common.__file__).read_bytes()
    whole = raw_get(serve("app"), "/file", "gzip")
    body = whole.raw_body  # type: ignore[attr-defined]
    if "content-encoding" in whole.headers:  # streamed from the file, compressed
        assert whole.headers["content-encoding"] == "gzip"
        assert whole.headers["etag"].startswith('W/"')
        assert gzip.decompress(body) == source
    else:  # the server sent it with http.response.pathsend: nothing to compress
        assert body == source
    # Byte ranges refer to the identity bytes: a 206 is never compressed.
    with httpx.Client(base_url=serve("app").url, timeout=10) as client:
        part = client.get("/file", headers={"accept-encoding": "gzip", "range": "bytes=0-99"})
    assert part.status_code == 206
    assert "content-encoding" not in part.headers
    assert part.content == source[:100]


# -- negotiation and configuration, no server needed -----------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip, deflate, br, zstd", "zstd"),
        ("br;q=1.0, gzip;q=0.8", "br"),
        ("gzip;q=0.8, br;q=1.0", "br"),
        ("gzip;q=0", None),
        ("GZIP", "gzip"),
        ("x-gzip", "gzip"),
        ("*;q=0.5, zstd;q=0", "br"),
        ("identity", None),
        ("gzip;q=0.5, identity;q=0.9", None),
        ("gzip;q=abc", None),  # malformed q: not acceptable
        ("gzip;q=1.5", None),
        ("", None),
    ],
)
def test_negotiate_encoding(header: str, expected: str | None) -> None:
    assert negotiate_encoding(header, ("zstd", "br", "gzip")) == expected


def test_unavailable_encoding_is_refused_at_startup() -> None:
    with pytest.raises(ValueError, match="not available"):
        GZipMiddleware(echo, encodings=["gzip", "lzma"])
