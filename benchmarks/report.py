"""Measurements, their summary over rounds, and the tables printed and written to RESULTS.md."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from benchmarks.cpu import NOISY_PERCENT, CpuTimes
from benchmarks.load import WrkResult

NO_CPU = CpuTimes(0.0, 0.0)
# wrk using this much of its core was itself the bottleneck.
LOAD_BOUND_PERCENT = 90.0


@dataclass
class Measurement:
    """One server under one scenario's load, once. `failure` set means: not a result."""

    scenario: str
    server: str
    wrk: WrkResult | None = None
    server_cpu: CpuTimes = NO_CPU
    failure: str | None = None
    log_tail: str = ""
    # share of (server's core, wrk's core) used by anything else; None: not pinned
    others_percent: tuple[float, float] | None = None

    @property
    def server_cpu_seconds(self) -> float:
        return self.server_cpu.total

    def _per_request_us(self, seconds: float) -> float:
        assert self.wrk is not None and self.wrk.requests
        return seconds / self.wrk.requests * 1e6

    @property
    def cpu_us_per_request(self) -> float:
        return self._per_request_us(self.server_cpu.total)

    @property
    def user_us_per_request(self) -> float:
        return self._per_request_us(self.server_cpu.user)

    @property
    def system_us_per_request(self) -> float:
        return self._per_request_us(self.server_cpu.system)


@dataclass
class Summary:
    """The median over rounds of one (scenario, server); FAILED if any round failed."""

    scenario: str
    server: str
    runs: list[Measurement] = field(default_factory=list)

    @property
    def failure(self) -> str | None:
        return next((run.failure for run in self.runs if run.failure), None)

    def _results(self) -> list[WrkResult]:
        return [run.wrk for run in self.runs if run.wrk]

    @property
    def requests_per_second(self) -> float:
        return statistics.median(result.requests_per_second for result in self._results())

    @property
    def cpu_us_per_request(self) -> float:
        return statistics.median(run.cpu_us_per_request for run in self.runs)

    @property
    def user_us_per_request(self) -> float:
        return statistics.median(run.user_us_per_request for run in self.runs)

    @property
    def system_us_per_request(self) -> float:
        return statistics.median(run.system_us_per_request for run in self.runs)

    def latency_us(self, percentile: str) -> float | None:
        values = [result.latency_us.get(percentile) for result in self._results()]
        present = [value for value in values if value is not None]
        return statistics.median(present) if present else None

    @property
    def server_cpu_percent(self) -> float:
        return statistics.median(
            run.server_cpu_seconds / run.wrk.seconds * 100 for run in self.runs if run.wrk)

    @property
    def others_percent(self) -> tuple[float, float] | None:
        values = [run.others_percent for run in self.runs if run.others_percent is not None]
        if not values:
            return None
        return (statistics.median(server for server, _ in values),
                statistics.median(load for _, load in values))

    @property
    def wrk_cpu_percent(self) -> float:
        return statistics.median(
            result.cpu_seconds / result.seconds * 100 for result in self._results())


def summarise(measurements: list[Measurement]) -> list[Summary]:
    summaries: dict[tuple[str, str], Summary] = {}
    for run in measurements:
        key = (run.scenario, run.server)
        summaries.setdefault(key, Summary(run.scenario, run.server)).runs.append(run)
    return list(summaries.values())


def _latency(us: float | None) -> str:
    if us is None:
        return "-"
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"


def _others(summary: Summary) -> str:
    others = summary.others_percent
    return "-" if others is None else f"{others[0]:.0f} / {others[1]:.0f}"


def _noisy(summary: Summary) -> bool:
    others = summary.others_percent
    return others is not None and max(others) > NOISY_PERCENT


def _status(summary: Summary) -> str:
    notes = []
    if _noisy(summary):
        notes.append("noisy (other jobs shared the cores)")
    if summary.wrk_cpu_percent >= LOAD_BOUND_PERCENT:
        notes.append("wrk-bound (requests/s is wrk's limit, not the server's)")
    return ", ".join(["ok", *notes])


def results_table(summaries: list[Summary]) -> str:
    rows = [
        "| scenario | server | requests/s | latency mean | p50 | p99 | server CPU µs/request"
        " | user + sys µs | server CPU % | wrk CPU % | others on server / wrk core % | status |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for s in summaries:
        if s.failure:
            rows.append(f"| {s.scenario} | {s.server} | - | - | - | - | - | - | - | - | - "
                        f"| **FAILED**: {s.failure} |")
            continue
        rows.append(
            f"| {s.scenario} | {s.server} | {s.requests_per_second:,.0f} "
            f"| {_latency(s.latency_us('mean'))} | {_latency(s.latency_us('50%'))} "
            f"| {_latency(s.latency_us('99%'))} "
            f"| {s.cpu_us_per_request:.1f} "
            f"| {s.user_us_per_request:.1f} + {s.system_us_per_request:.1f} "
            f"| {s.server_cpu_percent:.0f} "
            f"| {s.wrk_cpu_percent:.0f} | {_others(s)} | {_status(s)} |")
    return "\n".join(rows)


def ratios_table(summaries: list[Summary], subject: str = "dartle") -> str:
    """dartle against each anchor in the same scenario; both must have succeeded."""
    rows = [
        f"| scenario | anchor | {subject} CPU/request ÷ anchor's (lower is better)"
        f" | {subject} requests/s ÷ anchor's (higher is better) |",
        "| --- | --- | ---: | ---: |",
    ]
    by_key = {(s.scenario, s.server): s for s in summaries}
    for s in summaries:
        if s.server == subject:
            continue
        mine = by_key.get((s.scenario, subject))
        if mine is None:
            continue
        if mine.failure or s.failure:
            who = subject if mine.failure else s.server
            rows.append(f"| {s.scenario} | {s.server} | n/a ({who} FAILED) | n/a |")
            continue
        noisy = " (noisy)" if _noisy(mine) or _noisy(s) else ""
        rows.append(
            f"| {s.scenario} | {s.server} "
            f"| {mine.cpu_us_per_request / s.cpu_us_per_request:.2f} "
            f"| {mine.requests_per_second / s.requests_per_second:.2f}{noisy} |")
    return "\n".join(rows) if len(rows) > 2 else ""


def failures_section(summaries: list[Summary]) -> str:
    parts = []
    for s in summaries:
        for run in s.runs:
            if run.failure:
                parts.append(f"### {s.scenario} / {s.server}: {run.failure}\n")
                if run.log_tail:
                    parts.append(f"Server log (last lines):\n\n```\n{run.log_tail}\n```\n")
                if run.wrk and run.wrk.output:
                    parts.append(f"wrk output:\n\n```\n{run.wrk.output.strip()}\n```\n")
                break
    return "\n".join(parts)


def results_markdown(*, date: str, command: str, settings: dict[str, str],
                     machine: dict[str, str], versions: dict[str, str],
                     summaries: list[Summary]) -> str:
    def bullets(items: dict[str, str]) -> str:
        return "\n".join(f"- {key}: {value}" for key, value in items.items())

    ratios = ratios_table(summaries)
    failures = failures_section(summaries)
    sections = [
        "# Benchmark results",
        "Generated by `benchmarks/run.py`; overwritten by every run. How to read it: "
        "benchmarks/README.md. Compare ratios from one run, not absolute figures "
        "across runs or machines.",
        f"- date: {date}\n- command: `{command}`\n{bullets(settings)}",
        "## Machine\n\n" + bullets(machine),
        "## Versions\n\n" + bullets(versions),
        "## Results\n\n" + results_table(summaries),
    ]
    if ratios:
        sections.append("## dartle against the anchors\n\n" + ratios)
    if failures:
        sections.append("## Failures\n\n" + failures)
    return "\n\n".join(sections) + "\n"
