"""Request parsing in-process: headers, query, cookies, bodies, forms and their limits."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dartle.web.app import App
from dartle.web.datastructures import URL, Headers, MutableHeaders, QueryParams, State
from dartle.web.exceptions import ClientDisconnect, HTTPException
from dartle.web.formparsers import FormLimits, UploadFile
from dartle.web.requests import Request, parse_cookies
from dartle.web.testing import TestClient
from dartle.web.types import Message


def test_headers_are_case_insensitive_and_keep_repeats() -> None:
    headers = Headers(raw=[(b"x-a", b"1"), (b"content-type", b"text/plain"), (b"x-a", b"2")])
    assert headers["X-A"] == "1"
    assert headers.getlist("x-a") == ["1", "2"]
    assert "Content-Type" in headers
    assert headers.get("missing") is None
    assert list(headers.keys()) == ["x-a", "content-type"]
    assert headers == Headers(raw=[(b"x-a", b"2"), (b"x-a", b"1"), (b"content-type", b"text/plain")])
    assert Headers({"X-B": "v"}).raw == [(b"x-b", b"v")]
    with pytest.raises(KeyError):
        headers["nope"]


def test_mutable_headers_edit_the_raw_list_in_place() -> None:
    message: dict[str, Any] = {"headers": ((b"a", b"1"), (b"b", b"2"), (b"a", b"3"))}
    headers = MutableHeaders(scope=message)
    headers["A"] = "x"
    headers.append("set-cookie", "c=1")
    headers.append("set-cookie", "d=2")
    del headers["b"]
    headers.add_vary_header("Origin")
    headers.add_vary_header("origin")
    assert message["headers"] == [
        (b"a", b"x"),
        (b"set-cookie", b"c=1"),
        (b"set-cookie", b"d=2"),
        (b"vary", b"Origin"),
    ]
    assert headers.setdefault("a", "y") == "x"


def test_query_params_url_state() -> None:
    params = QueryParams(b"a=1&a=2&b=%20x&c")
    assert params["a"] == "2"
    assert params.getlist("a") == ["1", "2"]
    assert params["b"] == " x"
    assert params["c"] == ""
    assert str(QueryParams({"q": "a b"})) == "q=a+b"
    url = URL("https://user:pw@example.com:8443/p/a?x=1#f")
    assert (url.scheme, url.hostname, url.port, url.path, url.query, url.fragment) == (
        "https",
        "example.com",
        8443,
        "/p/a",
        "x=1",
        "f",
    )
    assert url.is_secure
    assert str(url.replace(port=9000)) == "https://user:pw@example.com:9000/p/a?x=1#f"
    assert str(url.include_query_params(y=2)) == "https://user:pw@example.com:8443/p/a?x=1&y=2#f"
    assert str(url.remove_query_params("x")) == "https://user:pw@example.com:8443/p/a#f"
    scope = {
        "scheme": "http",
        "path": "/a b",
        "raw_path": b"/a%20b",
        "query_string": b"q=1",
        "headers": [],
        "server": ("10.0.0.1", 8080),
    }
    assert str(URL(scope=scope)) == "http://10.0.0.1:8080/a%20b?q=1"
    state = State({"x": 1})
    state.y = 2
    assert (state.x, state.y, state.as_dict()) == (1, 2, {"x": 1, "y": 2})
    with pytest.raises(AttributeError):
        _ = state.z


def test_cookie_parsing() -> None:
    assert parse_cookies('a=1; b="x y"; c=; d=e=f') == {"a": "1", "b": "x y", "c": "", "d": "e=f"}
    assert parse_cookies("") == {}


def make_request(
    body_parts: list[bytes], headers: list[tuple[bytes, bytes]] | None = None, then: str = "http.disconnect"
) -> Request:
    messages: list[Message] = [
        {"type": "http.request", "body": part, "more_body": i < len(body_parts) - 1}
        for i, part in enumerate(body_parts)
    ]
    messages.append({"type": then})

    async def receive() -> Message:
        return messages.pop(0)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers or [], "query_string": b""}
    return Request(scope, receive)


async def test_body_is_cached_and_stream_is_once() -> None:
    request = make_request([b"ab", b"cd"])
    assert await request.body() == b"abcd"
    assert await request.body() == b"abcd"
    assert [c async for c in request.stream()] == [b"abcd", b""]
    fresh = make_request([b"ab"])
    _ = [c async for c in fresh.stream()]
    with pytest.raises(RuntimeError, match="consumed"):
        await fresh.body()


async def test_disconnect_while_reading_body() -> None:
    messages: list[Message] = [
        {"type": "http.request", "body": b"x", "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return messages.pop(0)

    request = Request({"type": "http", "headers": []}, receive)
    with pytest.raises(ClientDisconnect):
        await request.body()
    assert await request.is_disconnected()


async def test_is_disconnected_does_not_lose_body() -> None:
    request = make_request([b"payload"])
    assert not await request.is_disconnected()
    assert await request.body() == b"payload"
    assert await request.is_disconnected()


async def test_is_disconnected_returns_promptly_when_nothing_is_queued() -> None:
    never = asyncio.Event()

    async def receive() -> Message:
        await never.wait()
        return {"type": "http.disconnect"}

    request = Request({"type": "http", "headers": []}, receive)
    assert not await request.is_disconnected()


async def test_malformed_json() -> None:
    request = make_request([b"[1, 2"])
    with pytest.raises(HTTPException) as info:
        await request.json()
    assert info.value.status_code == 400
    assert "Malformed JSON body" in info.value.detail


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "BOUND") -> bytes:
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename is not None:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


MP = [(b"content-type", b"multipart/form-data; boundary=BOUND")]


async def test_multipart_fed_in_small_chunks_spools_to_disk() -> None:
    body = multipart([("a", None, b"1"), ("f", "ü.bin", b"Z" * 5000), ("a", None, b"2")])
    chunks = [body[i : i + 7] for i in range(0, len(body), 7)]
    request = make_request(chunks, MP)
    form = await request.form(limits=FormLimits(spool_max_size=1000))
    assert form.getlist("a") == ["1", "2"]
    upload = form["f"]
    assert isinstance(upload, UploadFile)
    assert upload.filename == "ü.bin"
    assert upload.size == 5000
    assert upload.file._rolled  # type: ignore[attr-defined]
    assert await upload.read() == b"Z" * 5000
    await form.close()
    assert upload.file.closed


@pytest.mark.parametrize(
    ("limits", "parts", "status", "words"),
    [
        (FormLimits(max_fields=1), [("a", None, b"1"), ("b", None, b"2")], 400, "Too many form fields"),
        (FormLimits(max_files=1), [("a", "1", b"1"), ("b", "2", b"2")], 400, "Too many files"),
        (FormLimits(max_part_size=3), [("a", None, b"1234")], 413, "'a' is larger than 3"),
        (FormLimits(max_file_size=3), [("a", "f.txt", b"1234")], 413, "'f.txt' is larger than 3"),
    ],
)
async def test_multipart_limits(limits: FormLimits, parts: list[Any], status: int, words: str) -> None:
    request = make_request([multipart(parts)], MP)
    with pytest.raises(HTTPException) as info:
        await request.form(limits=limits)
    assert info.value.status_code == status
    assert words in info.value.detail


async def test_part_without_name_is_400() -> None:
    body = b"--BOUND\r\nContent-Disposition: form-data\r\n\r\nx\r\n--BOUND--\r\n"
    with pytest.raises(HTTPException) as info:
        await make_request([body], MP).form()
    assert info.value.status_code == 400
    assert "name=" in info.value.detail


async def test_urlencoded_limits_and_unsupported_type() -> None:
    form_type = [(b"content-type", b"application/x-www-form-urlencoded")]
    form = await make_request([b"a=1&b=x+y&a=%C3%A9"], form_type).form()
    assert form.getlist("a") == ["1", "é"]
    assert form["b"] == "x y"
    with pytest.raises(HTTPException) as info:
        await make_request([b"a=1&b=2&c=3"], form_type).form(limits=FormLimits(max_fields=2))
    assert info.value.status_code == 400
    with pytest.raises(HTTPException) as info:
        await make_request([b"a=" + b"x" * 50], form_type).form(limits=FormLimits(max_part_size=10))
    assert info.value.status_code == 413
    with pytest.raises(HTTPException) as info:
        await make_request([b"{}"], [(b"content-type", b"application/json")]).form()
    assert info.value.status_code == 415


def test_body_read_in_middleware_is_still_there_for_the_handler() -> None:
    app = App()

    @app.middleware("http")
    async def peek(request: Request, call_next: Any) -> Any:
        seen = await request.body()
        response = await call_next(request)
        response.headers["x-peeked"] = str(len(seen))
        return response

    @app.post("/")
    async def handler(request: Request) -> dict[str, Any]:
        return {"body": (await request.body()).decode()}

    r = TestClient(app).post("/", content=b"hello")
    assert r.json() == {"body": "hello"}
    assert r.headers["x-peeked"] == "5"
