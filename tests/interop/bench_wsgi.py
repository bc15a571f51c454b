"""Quick benchmark of the WSGI bridge: Flask hello world on dartle vs the references.

    .venv/bin/python -m tests.interop.bench_wsgi [--duration 5] [--rounds 3]

Servers (all from tests/interop/.venv, one process, access log off, pinned to core 0;
wrk on core 1, 32 keep-alive connections):

- dartle:           `dartle run` detects the WSGI app and wraps it in dartle.asgi.wsgi
- dartle + a2wsgi:  the same server, with the reference bridge a2wsgi around the app
- uvicorn wsgi:     `uvicorn --interface wsgi` (which uses a2wsgi when installed)

Reported per server: requests/s and server CPU (user+sys of the server process, all its
threads) per request, medians over interleaved rounds. Not a test: numbers on a shared
2-core machine drift; compare within one run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys

from tests.interop.conftest import server_command
from tests.interop.venv import ensure_venv
from tests.support.servers import run_command

APP = "tests.interop.apps.flask_hello"
SERVERS = {
    "dartle": ("dartle", f"{APP}:app", ("--no-access-log",)),
    "dartle + a2wsgi": ("dartle", f"{APP}:a2wsgi_app", ("--no-access-log",)),
    "uvicorn wsgi": ("uvicorn", f"{APP}:app",
                     ("--interface", "wsgi", "--no-access-log", "--http", "httptools", "--loop", "uvloop")),
}
CLOCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK  # utime + stime, all threads


def wrk(url: str, duration: int, pin: list[str]) -> tuple[float, int]:
    out = subprocess.run([*pin, "wrk", "-t1", "-c32", f"-d{max(1, duration)}s", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    return rps, total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    python = ensure_venv()
    pinned = shutil.which("taskset") is not None and len(os.sched_getaffinity(0)) >= 2
    server_pin = ["taskset", "-c", "0"] if pinned else []
    load_pin = ["taskset", "-c", "1"] if pinned else []
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in SERVERS}
    for _ in range(args.rounds):
        for name, (kind, target, flags) in SERVERS.items():
            with run_command([*server_pin, *server_command(python, kind, target, *flags)]) as server:
                wrk(server.url + "/", 1, load_pin)  # warm-up
                before = cpu_seconds(server.proc.pid)
                rps, total = wrk(server.url + "/", args.duration, load_pin)
                used = cpu_seconds(server.proc.pid) - before
                results[name].append((rps, used / total * 1e6))
    print(f"Flask hello world, {args.rounds} rounds x {args.duration:g} s, "
          f"{'pinned (server core 0, wrk core 1)' if pinned else 'unpinned'}; medians")
    print(f"{'server':<18} {'requests/s':>11} {'CPU µs/request':>15}")
    for name, samples in results.items():
        rps = statistics.median(s[0] for s in samples)
        cpu = statistics.median(s[1] for s in samples)
        print(f"{name:<18} {rps:>11.0f} {cpu:>15.1f}")


if __name__ == "__main__":
    sys.exit(main())
