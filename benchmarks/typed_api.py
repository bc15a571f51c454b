"""Typed endpoint: the dartle framework against FastAPI, CPU per request.

One endpoint, written the same way in both frameworks: a path parameter, two query
parameters (one constrained), a JSON body model, and a response model:

    POST /items/{item_id}?q=hello&limit=5   {"name": ..., "price": ..., "tags": [...]}
    -> 200 {"id": ..., "name": ..., "price": ..., "tags": [...], "q": ..., "limit": ...}

Two measurements, both reported as CPU time per request (user+sys), which holds far
better than requests/s on a shared machine:

- over HTTP: each app on uvicorn (httptools, uvloop), one process pinned to core 0 with
  taskset, loaded by wrk pinned to core 1 (-t1 -c32, keep-alive, --duration s after a
  warm-up). CPU from /proc/PID/stat before and after the measured run, divided by the
  responses wrk counted. Servers run one after the other, `--rounds` times, interleaved;
  medians are reported. Each server is checked to answer correctly before and after.
- in-process: the ASGI app called directly with a prepared scope and fake
  receive/send, no server, no sockets: the framework's own cost, nothing else.

FastAPI is never a dependency of dartle: it is installed into a separate virtualenv
(default /tmp/dartle-typed-bench; `--venv` to change) together with uvicorn and dartle
from this checkout (editable), and both servers run from that venv.

    .venv/bin/python benchmarks/typed_api.py                 # both measurements
    .venv/bin/python benchmarks/typed_api.py --duration 5 --rounds 3
    .venv/bin/python benchmarks/typed_api.py --inprocess-only
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VENV = Path("/tmp/dartle-typed-bench")
BENCH_REQUIREMENTS = ["fastapi", "uvicorn[standard]"]
TICKS = os.sysconf("SC_CLK_TCK")

PATH = "/items/42"
QUERY = "q=hello&limit=5"
BODY = json.dumps({"name": "widget", "price": 9.5, "tags": ["a", "b", "c"]}).encode()
EXPECTED = {"id": 42, "name": "widget", "price": 9.5, "tags": ["a", "b", "c"], "q": "hello", "limit": 5}
APPS = {"dartle": "benchmarks.typed_api:dartle_app", "fastapi": "benchmarks.typed_api:fastapi_app"}


# ---------------------------------------------------------------------------
# The two apps (built on first access, so each venv only imports what it runs). This
# module does not use `from __future__ import annotations`: FastAPI cannot resolve
# string annotations naming a function's locals (dartle can).
# ---------------------------------------------------------------------------


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


class ItemOut(BaseModel):
    id: int
    name: str
    price: float
    tags: list[str]
    q: str | None
    limit: int


def build_dartle_app() -> Any:
    from dartle.web import App, Query

    app = App(docs_url=None, redoc_url=None)

    @app.post("/items/{item_id}", response_model=ItemOut)
    async def create_item(
        item_id: int,
        item: Item,
        q: str | None = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> Any:
        return ItemOut(id=item_id, name=item.name, price=item.price, tags=item.tags, q=q, limit=limit)

    return app


def build_fastapi_app() -> Any:
    from fastapi import FastAPI, Query

    app = FastAPI(docs_url=None, redoc_url=None)

    @app.post("/items/{item_id}", response_model=ItemOut)
    async def create_item(
        item_id: int,
        item: Item,
        q: str | None = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> Any:
        return ItemOut(id=item_id, name=item.name, price=item.price, tags=item.tags, q=q, limit=limit)

    return app


def __getattr__(name: str) -> Any:
    if name == "dartle_app":
        value = build_dartle_app()
    elif name == "fastapi_app":
        value = build_fastapi_app()
    else:
        raise AttributeError(name)
    globals()[name] = value
    return value


# ---------------------------------------------------------------------------
# The benchmark virtualenv
# ---------------------------------------------------------------------------


def ensure_venv(venv: Path) -> Path:
    """The venv's python, creating the venv (fastapi, uvicorn, dartle -e) if needed."""
    python = venv / "bin" / "python"
    marker = venv / ".dartle-typed-bench"
    if python.exists() and marker.exists():
        return python
    print(f"creating {venv} (fastapi, uvicorn[standard], dartle from {ROOT})...", flush=True)
    base = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", *BENCH_REQUIREMENTS, "-e", str(ROOT)],
        check=True,
    )
    marker.write_text("created by benchmarks/typed_api.py\n")
    return python


def versions(python: Path) -> str:
    code = (
        "import importlib.metadata as m\n"
        "print(', '.join(f'{p} {m.version(p)}' for p in "
        "('fastapi', 'starlette', 'pydantic', 'pydantic-core', 'uvicorn', 'dartle')))"
    )
    return subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


# ---------------------------------------------------------------------------
# In-process: call the ASGI app directly
# ---------------------------------------------------------------------------


def _scope() -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": QUERY.encode(),
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _inprocess(app: Any, count: int) -> tuple[float, bytes]:
    """CPU seconds per request over `count` calls, and the last response body."""
    request_message = {"type": "http.request", "body": BODY, "more_body": False}
    body = bytearray()

    async def receive() -> dict[str, Any]:
        return request_message

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    for _ in range(min(2000, count)):  # warm-up: caches, lazily built stacks
        await app(_scope(), receive, send)
    start = time.process_time()
    for _ in range(count):
        body.clear()
        await app(_scope(), receive, send)
    elapsed = time.process_time() - start
    return elapsed / count, bytes(body)


def inprocess_worker(count: int) -> None:
    """Run in the bench venv: print JSON {framework: µs per request}."""
    import uvloop

    results: dict[str, float] = {}
    for name, build in (("dartle", build_dartle_app), ("fastapi", build_fastapi_app)):
        seconds, body = uvloop.run(_inprocess(build(), count))
        if json.loads(body) != EXPECTED:
            raise SystemExit(f"{name} answered {body!r}")
        results[name] = seconds * 1e6
    print(json.dumps(results))


# ---------------------------------------------------------------------------
# Over HTTP: uvicorn + wrk
# ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def _post(url: str) -> Any:
    request = urllib.request.Request(
        url, data=BODY, headers={"content-type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def _start(python: Path, target: str, port: int, pin: bool) -> subprocess.Popen[bytes]:
    cmd = [
        str(python), "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port),
        "--http", "httptools", "--loop", "uvloop", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    if pin:
        cmd = ["taskset", "-c", "0", *cmd]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{target} exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)  # polling a port that is not listening yet; bounded by the deadline
    else:
        _stop(proc)
        raise SystemExit(f"{target} did not start listening within 30 s")
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_REQUESTS = re.compile(r"(\d+) requests in")
_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


def _wrk(url: str, seconds: float, script: Path, pin: bool) -> tuple[int, float]:
    cmd = ["wrk", "-t1", "-c32", f"-d{seconds:g}s", "-s", str(script), url]
    if pin:
        cmd = ["taskset", "-c", "1", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    bad = _NON2XX.search(out)
    if bad:
        raise SystemExit(f"wrk saw {bad.group(1)} error responses:\n{out}")
    requests = _REQUESTS.search(out)
    rps = _RPS.search(out)
    if requests is None or rps is None:
        raise SystemExit(f"cannot read wrk's output:\n{out}")
    return int(requests.group(1)), float(rps.group(1))


def measure_http(
    python: Path, name: str, duration: float, warmup: float, script: Path, pin: bool
) -> dict[str, float]:
    port = _free_port()
    proc = _start(python, APPS[name], port, pin)
    url = f"http://127.0.0.1:{port}{PATH}?{QUERY}"
    try:
        if _post(url) != EXPECTED:
            raise SystemExit(f"{name} answered wrongly before the run")
        _wrk(url, warmup, script, pin)
        before = _cpu_seconds(proc.pid)
        count, rps = _wrk(url, duration, script, pin)
        cpu = _cpu_seconds(proc.pid) - before
        if _post(url) != EXPECTED:
            raise SystemExit(f"{name} answered wrongly after the run")
    finally:
        _stop(proc)
    return {"us_per_request": cpu / count * 1e6, "rps": rps, "requests": count}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="the benchmark virtualenv")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of measured load per server")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load before measuring")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs of each server (medians)")
    parser.add_argument("--count", type=int, default=20000, help="in-process calls per framework")
    parser.add_argument("--inprocess-only", action="store_true")
    parser.add_argument("--http-only", action="store_true")
    parser.add_argument("--inprocess-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inprocess_worker:
        inprocess_worker(args.count)
        return
    python = ensure_venv(args.venv)
    print(f"versions: {versions(python)}")
    command = " ".join(["benchmarks/typed_api.py", *sys.argv[1:]])
    print(f"command: {command}")
    if not args.http_only:
        out = subprocess.run(
            [str(python), str(Path(__file__).resolve()), "--inprocess-worker", "--count", str(args.count)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        print("\nin-process (ASGI app called directly, CPU µs per request):")
        print(f"  dartle   {result['dartle']:8.1f}")
        print(f"  fastapi  {result['fastapi']:8.1f}")
        print(f"  ratio dartle/fastapi: {result['dartle'] / result['fastapi']:.2f}")
    if args.inprocess_only:
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    pin = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        body = BODY.decode().replace("\\", "\\\\").replace('"', '\\"')
        script.write_text(
            f'wrk.method = "POST"\nwrk.body = "{body}"\nwrk.headers["Content-Type"] = "application/json"\n'
        )
        runs: dict[str, list[dict[str, float]]] = {"dartle": [], "fastapi": []}
        for round_number in range(args.rounds):
            for name in ("dartle", "fastapi") if round_number % 2 == 0 else ("fastapi", "dartle"):
                result = measure_http(python, name, args.duration, args.warmup, script, pin)
                runs[name].append(result)
                print(
                    f"  round {round_number + 1} {name:8s} {result['us_per_request']:7.1f} µs/req "
                    f"{result['rps']:9.0f} req/s",
                    flush=True,
                )
    medians = {name: statistics.median(r["us_per_request"] for r in rs) for name, rs in runs.items()}
    rps = {name: statistics.median(r["rps"] for r in rs) for name, rs in runs.items()}
    print(f"\nover HTTP (uvicorn, {'pinned: server core 0, wrk core 1' if pin else 'NOT pinned'}; medians):")
    for name in ("dartle", "fastapi"):
        print(f"  {name:8s} {medians[name]:7.1f} µs CPU/request  {rps[name]:9.0f} req/s")
    print(f"  ratio dartle/fastapi CPU per request: {medians['dartle'] / medians['fastapi']:.2f}")


if __name__ == "__main__":
    main()
