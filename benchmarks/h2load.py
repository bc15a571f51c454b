"""h2load (nghttp2), the HTTP/2 load generator: its command line and its output.

It speaks HTTP/2 without TLS by prior knowledge (h2c) to an http:// URL and runs for a
duration (-D). Its summary gives a mean time per request but no percentiles: those come
from its per-request log (--log-file: one line per request, the time to the end of the
response in µs), written to benchmarks/out/.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from benchmarks.benchenv import OUT
from benchmarks.load import LoadResult, NoWindow, Window, children_cpu, latency_summary, stalled
from benchmarks.scenarios import Scenario


def command(h2load: str, scenario: Scenario, url: str, duration: float,
            cpus: str | None, log: Path | None = None) -> list[str]:
    cmd = ["taskset", "-c", cpus] if cpus is not None else []
    cmd += [h2load, "-t1", f"-c{scenario.connections}", f"-m{scenario.streams}",
            f"-D{max(1, round(duration))}"]
    if log is not None:
        cmd.append(f"--log-file={log}")
    return [*cmd, url]


def run(h2load: str, scenario: Scenario, port: int, duration: float, cpus: str | None,
        window: Window | None = None) -> LoadResult:
    window = window or NoWindow()
    url = f"http://127.0.0.1:{port}{scenario.request.path}"
    OUT.mkdir(exist_ok=True)
    log = OUT / f"h2load-{scenario.name}.tsv"
    log.unlink(missing_ok=True)
    before = children_cpu()
    window.start()
    try:
        proc = subprocess.run(command(h2load, scenario, url, duration, cpus, log),
                              capture_output=True, text=True, timeout=duration + 60)
    except subprocess.TimeoutExpired:
        window.stop()
        return LoadResult(problems=["h2load did not finish"])
    window.stop()
    result = parse(proc.stdout)
    if log.exists():
        # the summary's mean stays; the log adds the percentiles
        result.latency_us = {**latency_summary(parse_log(log.read_text())),
                             **result.latency_us}
    result.cpu_seconds = children_cpu() - before
    problem = stalled(result, scenario)
    if problem:
        result.problems.append(problem)
    if proc.returncode != 0:
        result.problems.insert(0, f"h2load exited with status {proc.returncode}: "
                                  f"{(proc.stderr or proc.stdout).strip()[-200:]}")
    return result


def measure(h2load: str, scenario: Scenario, port: int, duration: float, warmup: float,
            cpus: str | None, window: Window) -> LoadResult:
    if warmup > 0:
        run(h2load, scenario, port, warmup, cpus)
    return run(h2load, scenario, port, duration, cpus, window)


_UNITS_US = {"us": 1.0, "ms": 1e3, "s": 1e6}
_FINISHED = re.compile(r"^finished in ([\d.]+)(us|ms|s), ([\d.]+) req/s", re.M)
_REQUESTS = re.compile(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                       r"(\d+) failed, (\d+) errored, (\d+) timeout", re.M)
_STATUS = re.compile(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", re.M)
_TIME = re.compile(r"^time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+"
                   r"([\d.]+)(us|ms|s)", re.M)


def parse_log(text: str) -> list[float]:
    """Latencies in µs of the successful requests in h2load's --log-file (failed: -1)."""
    latencies = []
    for line in text.splitlines():
        columns = line.split("\t")
        if len(columns) >= 3 and columns[1].isdigit():
            latencies.append(float(columns[2]))
    return latencies


def parse(output: str) -> LoadResult:
    """Parse h2load's summary. Anything that makes the run unusable goes to problems."""
    result = LoadResult(output=output)
    finished = _FINISHED.search(output)
    requests = _REQUESTS.search(output)
    if not finished or not requests:
        result.problems.append("no request count in h2load's output")
        return result
    result.seconds = float(finished.group(1)) * _UNITS_US[finished.group(2)] / 1e6
    _, _, _, succeeded, failed, errored, timeout = map(int, requests.groups())
    result.requests = succeeded
    result.requests_per_second = succeeded / result.seconds if result.seconds else 0.0
    timing = _TIME.search(output)
    if timing:
        result.latency_us["mean"] = float(timing.group(5)) * _UNITS_US[timing.group(6)]
    status = _STATUS.search(output)
    if status:
        result.non_2xx_3xx = int(status.group(3)) + int(status.group(4))
        if result.non_2xx_3xx:
            result.problems.append(f"{result.non_2xx_3xx} responses were not 2xx/3xx")
    bad = ", ".join(f"{kind} {n}" for kind, n in
                    (("failed", failed), ("errored", errored), ("timeout", timeout)) if n)
    if bad:
        result.problems.append(f"requests {bad}")
    if not succeeded:
        result.problems.append("no responses: connections stalled")
    return result
