"""The startup line, the access log, and proxy headers."""

from __future__ import annotations

import re
from typing import Any

from tests.server.asgi_json import decode
from tests.server.conftest import Harness, dartle_only, new_rid
from tests.server.rawhttp import request


def test_startup_line_names_the_url(server: Harness) -> None:
    log = server.log_since(0)
    assert re.search(rf"running on http://127\.0\.0\.1:{server.port}\b", log)


@dartle_only
def test_access_log_line(server: Harness) -> None:
    mark = server.log_mark()
    rid = new_rid()
    conn = server.raw()
    target = f"/stream?chunks=3&size=700&cl=1&rid={rid}"
    conn.send(request("GET", target))
    assert conn.read_response().status == 200
    log = server.wait_for_log(re.escape(target), mark)
    line = next(line for line in log.splitlines() if rid in line)
    # client address, request line, status, bytes, milliseconds
    pattern = (
        rf"127\.0\.0\.1:{conn.local_port}\b.*GET {re.escape(target)} HTTP/1\.1\"? "
        r"200 (\d+) .*?(\d+(?:\.\d+)?) ?ms"
    )
    match = re.search(pattern, line)
    assert match, line
    assert int(match.group(1)) >= 2100


def test_no_access_log(start_server: Any) -> None:
    srv = start_server("--no-access-log")
    quiet, loud = new_rid(), new_rid()
    assert srv.http.get(f"/echo?rid={quiet}").status_code == 200
    # An app error is always logged, after the first request: a marker to wait for.
    assert srv.http.get(f"/raise?when=before&rid={loud}").status_code == 500
    log = srv.wait_for_log(f"boom-{loud}")
    assert quiet not in log


@dartle_only
def test_proxy_headers_from_a_trusted_proxy(start_server: Any) -> None:
    srv = start_server("--proxy-headers", "--forwarded-allow-ips", "127.0.0.1")
    headers = {"x-rid": new_rid(), "x-forwarded-for": "203.0.113.7, 127.0.0.1", "x-forwarded-proto": "https"}
    scope = decode(srv.http.get("/scope", headers=headers).json())
    assert scope["client"][0] == "203.0.113.7"
    assert scope["scheme"] == "https"


@dartle_only
def test_proxy_headers_from_an_untrusted_peer_are_ignored(start_server: Any) -> None:
    srv = start_server("--proxy-headers", "--forwarded-allow-ips", "10.9.8.7")
    headers = {"x-rid": new_rid(), "x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https"}
    scope = decode(srv.http.get("/scope", headers=headers).json())
    assert scope["client"][0] == "127.0.0.1"
    assert scope["scheme"] == "http"


def test_no_proxy_headers(start_server: Any) -> None:
    srv = start_server("--no-proxy-headers", "--forwarded-allow-ips", "*")
    headers = {"x-rid": new_rid(), "x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https"}
    scope = decode(srv.http.get("/scope", headers=headers).json())
    assert scope["client"][0] == "127.0.0.1"
    assert scope["scheme"] == "http"
