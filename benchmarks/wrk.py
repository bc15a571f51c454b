"""wrk, the HTTP/1.1 load generator: its command line, its request script, its output.

A GET without pipelining needs no script. Anything else (a method, a body, a content
type, pipelining) is a Lua script written to benchmarks/out/ from the scenario's
request: the settings first, then pipeline.lua when requests are pipelined.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from benchmarks.benchenv import BENCH_DIR, OUT
from benchmarks.load import LoadResult, NoWindow, Window, children_cpu, stalled
from benchmarks.scenarios import Scenario

PIPELINE_SCRIPT = BENCH_DIR / "pipeline.lua"


def script(scenario: Scenario) -> Path | None:
    """The Lua script wrk needs for the scenario's request, or None for a plain GET."""
    request = scenario.request
    lines = []
    if request.method != "GET":
        lines.append(f'wrk.method = "{request.method}"')
    if request.body:
        text = request.body.decode("ascii")
        level = "=" * 4
        if f"]{level}]" in text:
            raise ValueError(f"{scenario.name}: the body cannot be quoted in a Lua long string")
        lines.append(f"wrk.body = [{level}[{text}]{level}]")
    if request.content_type:
        lines.append(f'wrk.headers["Content-Type"] = "{request.content_type}"')
    if scenario.pipeline > 1:
        lines.append(PIPELINE_SCRIPT.read_text())
    if not lines:
        return None
    OUT.mkdir(exist_ok=True)
    path = OUT / f"wrk-{scenario.name}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def command(wrk: str, scenario: Scenario, url: str, duration: float,
            cpus: str | None) -> list[str]:
    cmd = ["taskset", "-c", cpus] if cpus is not None else []
    cmd += [wrk, "-t1", f"-c{scenario.connections}", f"-d{max(1, round(duration))}s", "--latency"]
    lua = script(scenario)
    if lua is not None:
        cmd += ["-s", str(lua)]
    cmd.append(url)
    if scenario.pipeline > 1:
        cmd += ["--", str(scenario.pipeline)]
    return cmd


def run(wrk: str, scenario: Scenario, port: int, duration: float, cpus: str | None,
        window: Window | None = None) -> LoadResult:
    """Run wrk against 127.0.0.1:port for `duration` seconds and parse what it says."""
    window = window or NoWindow()
    url = f"http://127.0.0.1:{port}{scenario.request.path}"
    cmd = command(wrk, scenario, url, duration, cpus)
    before = children_cpu()
    window.start()
    # wrk stops by itself after -d seconds; the timeout only guards against a hang.
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    except subprocess.TimeoutExpired:
        window.stop()
        return LoadResult(problems=["wrk did not finish"])
    window.stop()
    result = parse(proc.stdout)
    if scenario.pipeline > 1:
        # wrk's percentiles are wrong when pipelining (wg/wrk#236: zeros, or p50 above
        # the mean); its mean, the time to answer a whole batch, holds.
        result.latency_us = {k: v for k, v in result.latency_us.items() if k == "mean"}
    result.cpu_seconds = children_cpu() - before
    problem = stalled(result, scenario)
    if problem:
        result.problems.append(problem)
    if proc.returncode != 0:
        result.problems.insert(0, f"wrk exited with status {proc.returncode}: "
                                  f"{proc.stderr.strip()[:200]}")
    return result


def measure(wrk: str, scenario: Scenario, port: int, duration: float, warmup: float,
            cpus: str | None, window: Window) -> LoadResult:
    """A discarded warm-up run (first requests fill caches, pools), then the measured one."""
    if warmup > 0:
        run(wrk, scenario, port, warmup, cpus)
    return run(wrk, scenario, port, duration, cpus, window)


_UNITS_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}
_PERCENTILE = re.compile(r"^\s*(\d+(?:\.\d+)?%)\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),", re.M)
_MEAN = re.compile(r"^\s*Latency\s+([\d.]+)(us|ms|s|m|h)\s", re.M)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_NON_2XX = re.compile(r"^\s*Non-2xx or 3xx responses:\s+(\d+)", re.M)
_SOCKET_ERRORS = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def parse(output: str) -> LoadResult:
    """Parse `wrk --latency` output. Anything that makes the run unusable goes to problems."""
    result = LoadResult(output=output)
    total = _TOTAL.search(output)
    rps = _RPS.search(output)
    if not total or not rps:
        result.problems.append("no request count in wrk's output")
        return result
    result.requests = int(total.group(1))
    result.seconds = float(total.group(2)) * _UNITS_US[total.group(3)] / 1e6
    result.requests_per_second = float(rps.group(1))
    mean = _MEAN.search(output)
    if mean:
        result.latency_us["mean"] = float(mean.group(1)) * _UNITS_US[mean.group(2)]
    percentiles = {percentile: float(value) * _UNITS_US[unit]
                   for percentile, value, unit in _PERCENTILE.findall(output)}
    # With pipelining wrk prints some or all percentiles as 0 (wg/wrk#236): a latency
    # is never 0, so those are missing figures, not fast ones.
    result.latency_us.update((key, value) for key, value in percentiles.items() if value)
    non_2xx = _NON_2XX.search(output)
    if non_2xx:
        result.non_2xx_3xx = int(non_2xx.group(1))
        result.problems.append(f"{result.non_2xx_3xx} responses were not 2xx/3xx")
    errors = _SOCKET_ERRORS.search(output)
    if errors:
        kinds = ("connect", "read", "write", "timeout")
        result.socket_errors = dict(zip(kinds, map(int, errors.groups()), strict=True))
        bad = ", ".join(f"{kind} {n}" for kind, n in result.socket_errors.items() if n)
        if bad:
            result.problems.append(f"socket errors: {bad}")
    if not result.requests:
        result.problems.append("no responses: connections stalled")
    return result
