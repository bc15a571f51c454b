"""The nginx configuration of docs/server.md, run by a real nginx in front of dartle.

The block is taken from the page as it is; only the addresses and the certificate paths
are replaced (each replacement must match exactly once, so an edit of the page that
breaks this test's assumptions fails loudly instead of testing something else).
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.docs.markdown import ROOT, blocks
from tests.support.servers import ServerProcess, run_server
from tests.support.services import free_port, require_binary
from tests.support.tls import PKI, make_pki

PAGE = ROOT / "docs" / "server.md"


def nginx_block() -> str:
    found = [block.code for block in blocks(PAGE) if block.lang == "nginx"]
    assert len(found) == 1, "docs/server.md should have exactly one nginx block"
    return found[0]


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"expected {old!r} once in the nginx block of docs/server.md"
    return text.replace(old, new)


class Proxy:
    def __init__(self, http_port: int, https_port: int, pki: PKI) -> None:
        self.http = f"http://127.0.0.1:{http_port}"
        self.https = f"https://localhost:{https_port}"
        self.pki = pki

    def client(self, **options: object) -> httpx.Client:
        verify = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        return httpx.Client(base_url=self.https, verify=verify, timeout=10, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    nginx = require_binary("nginx", "/usr/sbin/nginx")
    workdir = tmp_path_factory.mktemp("nginx")
    pki = make_pki(workdir / "pki")
    http_port, https_port = free_port(), free_port()
    with run_server("tests.docs.apps:app") as dartle:
        site = nginx_block()
        site = _replace_once(site, "server 127.0.0.1:8000;", f"server 127.0.0.1:{dartle.port};")
        site = _replace_once(site, "listen 80;", f"listen 127.0.0.1:{http_port};")
        site = _replace_once(site, "listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
        site = _replace_once(
            site, "/etc/letsencrypt/live/example.com/fullchain.pem;", f"{pki.server_cert};"
        )
        site = _replace_once(site, "/etc/letsencrypt/live/example.com/privkey.pem;", f"{pki.server_key};")
        conf = workdir / "nginx.conf"
        conf.write_text(_main_config(workdir, site))
        check = subprocess.run([nginx, "-t", "-p", str(workdir), "-c", str(conf), "-e", "stderr"],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        proc = subprocess.Popen(
            [nginx, "-p", str(workdir), "-c", str(conf), "-e", "stderr"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        server = ServerProcess(proc, f"https://localhost:{https_port}")
        try:
            # The master binds the ports before it starts its workers: this line means ready.
            server.wait_for_log(rb"start worker process", timeout=20)
            yield Proxy(http_port, https_port, pki)
        finally:
            server.stop()


def _main_config(workdir: Path, site: str) -> str:
    """nginx.conf around the page's block, with every path inside `workdir`."""
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers need the temp dirs below
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temp = "\n".join(f"    {kind}_temp_path {workdir / kind};" for kind in kinds)
    return f"""{user}daemon off;
worker_processes 1;
pid {workdir / "nginx.pid"};
error_log stderr notice;
events {{ worker_connections 64; }}
http {{
    access_log off;
{temp}
{site}
}}
"""


def test_plain_http_is_redirected_to_https(proxy: Proxy) -> None:
    response = httpx.get(f"{proxy.http}/items?page=2", headers={"host": "example.com"})
    assert response.status_code == 301
    assert response.headers["location"] == "https://example.com/items?page=2"


def test_app_sees_the_browsers_scheme_client_and_host(proxy: Proxy) -> None:
    with proxy.client() as client:
        seen = client.get("/echo", headers={"x-forwarded-for": "203.0.113.7"}).json()
    assert seen["scheme"] == "https"
    assert seen["url"].startswith(f"{proxy.https}/echo")
    assert seen["host"] == proxy.https.removeprefix("https://")
    assert seen["x_forwarded_for"] == "203.0.113.7, 127.0.0.1"  # nginx appended its peer
    assert seen["http_version"] == "1.1"


def test_http2_from_the_client_to_nginx(proxy: Proxy) -> None:
    with proxy.client(http2=True) as client:
        response = client.get("/echo")
    assert response.http_version == "HTTP/2"
    seen = response.json()
    assert (seen["scheme"], seen["host"]) == ("https", proxy.https.removeprefix("https://"))


def test_streamed_response_is_not_buffered(proxy: Proxy) -> None:
    with proxy.client() as client, client.stream("GET", "/held") as response:
        lines = response.iter_lines()
        # The app has sent only this line and waits: nginx must have passed it on.
        assert next(lines) == "first"
        with proxy.client() as other:
            assert other.post("/release").json() == {"released": True}
        assert next(lines) == "last"


def test_websocket_through_the_proxy(proxy: Proxy) -> None:
    context = ssl.create_default_context(cafile=str(proxy.pki.ca_cert))
    url = proxy.https.replace("https://", "wss://") + "/ws"
    with connect(url, ssl=context, open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10)) == {"scheme": "wss", "client": "127.0.0.1"}
        ws.send("through nginx")
        assert ws.recv(timeout=10) == "through nginx"
