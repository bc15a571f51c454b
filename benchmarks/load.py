"""Scenarios, and the load generator (wrk) that drives them: its command line and output.

A scenario names the app the servers load, the response it must give, and the shape of
the load. Adding a scenario is adding a row to `SCENARIOS`.
"""

from __future__ import annotations

import re
import resource
import subprocess
from dataclasses import dataclass, field

from benchmarks.benchenv import BENCH_DIR

PIPELINE_SCRIPT = BENCH_DIR / "pipeline.lua"

# wrk keeps every connection busy: as soon as a response (or a pipelined batch) is in,
# the next request leaves. So responses ~= connections x depth x seconds / mean latency
# (Little's law). A wrk starved of CPU by other jobs gets half of that or less; a tenth
# means connections stopped getting answers.
STALLED_FRACTION = 0.1


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    app: str  # module:attribute, served by every server
    expected_body: bytes  # checked once before and once after the load
    connections: int = 64
    pipeline: int = 1  # requests written at once per connection (HTTP/1.1 pipelining)
    path: str = "/"


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario("plaintext", "GET / -> 200 'Hello, world!', 64 keep-alive connections",
                 "benchmarks.apps.hello:app", b"Hello, world!"),
        Scenario("pipelined", "as plaintext, 16 requests pipelined per connection",
                 "benchmarks.apps.hello:app", b"Hello, world!", pipeline=16),
    )
}


@dataclass
class WrkResult:
    """What one wrk run reported; `problems` lists why it cannot count as a result."""

    requests: int = 0
    seconds: float = 0.0
    requests_per_second: float = 0.0
    latency_us: dict[str, float] = field(default_factory=dict)  # "mean", "50%"... -> µs
    non_2xx_3xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    cpu_seconds: float = 0.0  # wrk's own user+sys time
    output: str = ""
    problems: list[str] = field(default_factory=list)


def wrk_command(wrk: str, scenario: Scenario, url: str, duration: float,
                cpu: str | None) -> list[str]:
    cmd = ["taskset", "-c", cpu] if cpu is not None else []
    cmd += [wrk, "-t1", f"-c{scenario.connections}", f"-d{max(1, round(duration))}s",
            "--latency"]
    if scenario.pipeline > 1:
        cmd += ["-s", str(PIPELINE_SCRIPT), url, "--", str(scenario.pipeline)]
    else:
        cmd.append(url)
    return cmd


def run_wrk(wrk: str, scenario: Scenario, port: int, duration: float,
            cpu: str | None) -> WrkResult:
    """Run wrk against 127.0.0.1:port for `duration` seconds and parse what it says."""
    url = f"http://127.0.0.1:{port}{scenario.path}"
    cmd = wrk_command(wrk, scenario, url, duration, cpu)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    # wrk stops by itself after -d seconds; the timeout only guards against a hang.
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    except subprocess.TimeoutExpired:
        return WrkResult(problems=["wrk did not finish"])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = parse_wrk(proc.stdout)
    if scenario.pipeline > 1:
        # wrk's percentiles are wrong when pipelining (wg/wrk#236: zeros, or p50 above
        # the mean); its mean, the time to answer a whole batch, holds.
        result.latency_us = {k: v for k, v in result.latency_us.items() if k == "mean"}
    result.cpu_seconds = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    problem = stalled(result, scenario)
    if problem:
        result.problems.append(problem)
    if proc.returncode != 0:
        result.problems.insert(0, f"wrk exited with status {proc.returncode}: "
                                  f"{proc.stderr.strip()[:200]}")
    return result


_UNITS_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}
_PERCENTILE = re.compile(r"^\s*(\d+(?:\.\d+)?%)\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),", re.M)
_MEAN = re.compile(r"^\s*Latency\s+([\d.]+)(us|ms|s|m|h)\s", re.M)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_NON_2XX = re.compile(r"^\s*Non-2xx or 3xx responses:\s+(\d+)", re.M)
_SOCKET_ERRORS = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def parse_wrk(output: str) -> WrkResult:
    """Parse `wrk --latency` output. Anything that makes the run unusable goes to problems."""
    result = WrkResult(output=output)
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


def stalled(result: WrkResult, scenario: Scenario) -> str | None:
    """A problem if wrk counted far fewer responses than its own latency implies."""
    mean_us = result.latency_us.get("mean")
    if not result.requests or not mean_us or not result.seconds:
        return None
    expected = scenario.connections * scenario.pipeline * result.seconds / (mean_us / 1e6)
    if result.requests >= STALLED_FRACTION * expected:
        return None
    return (f"only {result.requests} responses where the mean latency implies about "
            f"{expected:.0f}: connections stalled")


def warm_up(wrk: str, scenario: Scenario, port: int, seconds: float, cpu: str | None) -> None:
    """Load the server briefly and discard the figures: first requests fill caches, pools."""
    if seconds > 0:
        run_wrk(wrk, scenario, port, seconds, cpu)
