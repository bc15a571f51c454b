"""Measurements, their summary over rounds, and the tables printed and written to RESULTS.md."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from benchmarks.cpu import NOISY_PERCENT, CpuTimes
from benchmarks.idle import IdleResult
from benchmarks.load import LoadResult
from benchmarks.scenarios import SCENARIOS

NO_CPU = CpuTimes(0.0, 0.0)
# A load generator using this much of its core was itself the bottleneck.
LOAD_BOUND_PERCENT = 90.0
# The load core this busy, the load generator and everything else together: it was full.
LOAD_CORE_FULL_PERCENT = 90.0


@dataclass
class Measurement:
    """One stack under one scenario, once. `failure` set means: not a result.

    `unsupported` set means the server cannot take part (no HTTP/2 without TLS, say):
    neither a result nor a failure.
    """

    scenario: str
    stack: str
    load: LoadResult | None = None
    idle: IdleResult | None = None
    server_cpu: CpuTimes = NO_CPU
    failure: str | None = None
    unsupported: str | None = None
    log_tail: str = ""
    # share of each core used by anything but the server / the load generator:
    # (server's core, load core) when split, (both cores,) when shared; None: not pinned
    others_percent: tuple[float, ...] | None = None

    @property
    def server_cpu_seconds(self) -> float:
        return self.server_cpu.total

    def _per_request_us(self, seconds: float) -> float:
        assert self.load is not None and self.load.requests
        return seconds / self.load.requests * 1e6

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
    """The median over rounds of one (scenario, stack); FAILED if any round failed."""

    scenario: str
    stack: str
    runs: list[Measurement] = field(default_factory=list)

    @property
    def failure(self) -> str | None:
        return next((run.failure for run in self.runs if run.failure), None)

    @property
    def unsupported(self) -> str | None:
        return next((run.unsupported for run in self.runs if run.unsupported), None)

    @property
    def ok(self) -> bool:
        return not self.failure and not self.unsupported

    @property
    def is_memory(self) -> bool:
        """An idle-connections summary: memory figures, no requests."""
        scenario = SCENARIOS.get(self.scenario)
        return (scenario is not None and scenario.load == "idle") or any(
            run.idle is not None for run in self.runs)

    def _results(self) -> list[LoadResult]:
        return [run.load for run in self.runs if run.load]

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
            run.server_cpu_seconds / run.load.seconds * 100 for run in self.runs if run.load)

    @property
    def others_percent(self) -> tuple[float, ...] | None:
        values = [run.others_percent for run in self.runs if run.others_percent is not None]
        if not values:
            return None
        return tuple(statistics.median(column) for column in zip(*values, strict=True))

    @property
    def load_cpu_percent(self) -> float:
        return statistics.median(
            result.cpu_seconds / result.seconds * 100 for result in self._results())

    # idle connections
    def _idle(self) -> list[IdleResult]:
        return [run.idle for run in self.runs if run.idle]

    @property
    def bytes_per_connection(self) -> float:
        return statistics.median(idle.bytes_per_connection for idle in self._idle())

    @property
    def rss_before(self) -> float:
        return statistics.median(idle.rss_before for idle in self._idle())

    @property
    def rss_after(self) -> float:
        return statistics.median(idle.rss_after for idle in self._idle())

    @property
    def connections_kept(self) -> int:
        return min(idle.kept for idle in self._idle())


def summarise(measurements: list[Measurement]) -> list[Summary]:
    summaries: dict[tuple[str, str], Summary] = {}
    for run in measurements:
        key = (run.scenario, run.stack)
        summaries.setdefault(key, Summary(run.scenario, run.stack)).runs.append(run)
    return list(summaries.values())


def _latency(us: float | None) -> str:
    if us is None:
        return "-"
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"


def _others(summary: Summary) -> str:
    others = summary.others_percent
    if others is None:
        return "-"
    return " / ".join(f"{value:.0f}" for value in others) + (" (both)" if len(others) == 1 else "")


def _noisy(summary: Summary) -> bool:
    """Whether other work competed with the stack for its cores (requests/s suspect).

    Work on the server's core competes with the server. The load core has room to spare
    (the load generator is not the limit), so the scheduler puts other jobs there, and
    loopback TCP work lands there too: that competes only when the core was full and the
    load generator had to wait for it.
    """
    others = summary.others_percent
    if others is None:
        return False
    if len(others) == 1:  # shared pinning: one figure for both cores
        return others[0] > NOISY_PERCENT
    server_core, load_core = others
    return server_core > NOISY_PERCENT or (
        load_core > NOISY_PERCENT
        and load_core + summary.load_cpu_percent >= LOAD_CORE_FULL_PERCENT)


def _status(summary: Summary) -> str:
    notes = []
    if _noisy(summary):
        notes.append("noisy (other jobs shared the cores)")
    if not summary.is_memory and summary.load_cpu_percent >= LOAD_BOUND_PERCENT:
        notes.append("load-bound (requests/s is the load generator's limit, not the server's)")
    return ", ".join(["ok", *notes])


def _not_a_result(summary: Summary) -> str | None:
    if summary.unsupported:
        return f"not supported: {summary.unsupported}"
    if summary.failure:
        return f"**FAILED**: {summary.failure}"
    return None


def results_table(summaries: list[Summary]) -> str:
    rows = [
        "| scenario | stack | requests/s | latency mean | p50 | p99 | server CPU µs/request"
        " | user + sys µs | server CPU % | load gen CPU % | others on server / load core % "
        "| status |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for s in summaries:
        if s.is_memory:
            continue
        verdict = _not_a_result(s)
        if verdict:
            rows.append(f"| {s.scenario} | {s.stack} |" + " - |" * 9 + f" {verdict} |")
            continue
        rows.append(
            f"| {s.scenario} | {s.stack} | {s.requests_per_second:,.0f} "
            f"| {_latency(s.latency_us('mean'))} | {_latency(s.latency_us('50%'))} "
            f"| {_latency(s.latency_us('99%'))} "
            f"| {s.cpu_us_per_request:.1f} "
            f"| {s.user_us_per_request:.1f} + {s.system_us_per_request:.1f} "
            f"| {s.server_cpu_percent:.0f} "
            f"| {s.load_cpu_percent:.0f} | {_others(s)} | {_status(s)} |")
    return "\n".join(rows) if len(rows) > 2 else ""


def _mib(size: float) -> str:
    return f"{size / 2**20:.1f} MiB"


def memory_table(summaries: list[Summary]) -> str:
    rows = [
        "| scenario | stack | connections held | server RSS before | RSS with them open "
        "| KiB per connection | others on server / load core % | status |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for s in summaries:
        if not s.is_memory:
            continue
        verdict = _not_a_result(s)
        if verdict:
            rows.append(f"| {s.scenario} | {s.stack} |" + " - |" * 5 + f" {verdict} |")
            continue
        rows.append(
            f"| {s.scenario} | {s.stack} | {s.connections_kept:,} | {_mib(s.rss_before)} "
            f"| {_mib(s.rss_after)} | {s.bytes_per_connection / 1024:.1f} | {_others(s)} "
            f"| {_status(s)} |")
    return "\n".join(rows) if len(rows) > 2 else ""


def ratios_table(summaries: list[Summary]) -> str:
    """Each scenario's (subject, anchor) pairs, both run in this run."""
    rows = [
        "| scenario | subject | anchor | subject's CPU/request (memory/connection) ÷ anchor's"
        " (lower is better) | subject's requests/s ÷ anchor's (higher is better) |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    by_key = {(s.scenario, s.stack): s for s in summaries}
    seen = []
    for s in summaries:
        if s.scenario not in seen:
            seen.append(s.scenario)
    for name in seen:
        scenario = SCENARIOS.get(name)
        for subject, anchor in scenario.pairs() if scenario else ():
            mine, theirs = by_key.get((name, subject)), by_key.get((name, anchor))
            if mine is None or theirs is None:
                continue
            if mine.unsupported and theirs.unsupported:
                continue  # nothing measured on either side: nothing to say
            lead = f"| {name} | {subject} | {anchor} "
            broken = next((x for x in (mine, theirs) if not x.ok), None)
            if broken is not None:
                why = "not supported" if broken.unsupported else "FAILED"
                rows.append(lead + f"| n/a ({broken.stack} {why}) | n/a |")
                continue
            noisy = " (noisy)" if _noisy(mine) or _noisy(theirs) else ""
            if mine.is_memory:
                ratio = mine.bytes_per_connection / theirs.bytes_per_connection
                rows.append(lead + f"| {ratio:.2f} | - |")
                continue
            rows.append(
                lead + f"| {mine.cpu_us_per_request / theirs.cpu_us_per_request:.2f} "
                f"| {mine.requests_per_second / theirs.requests_per_second:.2f}{noisy} |")
    return "\n".join(rows) if len(rows) > 2 else ""


def failures_section(summaries: list[Summary]) -> str:
    parts = []
    for s in summaries:
        for run in s.runs:
            if run.failure:
                parts.append(f"### {s.scenario} / {s.stack}: {run.failure}\n")
                if run.log_tail:
                    parts.append(f"Server log (last lines):\n\n```\n{run.log_tail}\n```\n")
                output = (run.load.output if run.load else run.idle.output if run.idle else "")
                if output.strip():
                    parts.append(f"Load generator output:\n\n```\n{output.strip()[-3000:]}\n```\n")
                break
    return "\n".join(parts)


def chart_data(summaries: list[Summary]) -> list[dict[str, Any]]:
    """What benchmarks/chart.py draws: one bar per (scenario, stack)."""
    data = []
    for s in summaries:
        entry: dict[str, Any] = {"scenario": s.scenario, "stack": s.stack,
                                 "status": "unsupported" if s.unsupported
                                 else "failed" if s.failure else "ok"}
        if s.ok:
            if s.is_memory:
                entry.update(value=s.bytes_per_connection / 1024, unit="KiB per idle connection")
            else:
                entry.update(value=s.cpu_us_per_request, unit="server CPU µs per request",
                             requests_per_second=s.requests_per_second)
        data.append(entry)
    return data


def results_markdown(*, date: str, command: str, settings: dict[str, str],
                     machine: dict[str, str], versions: dict[str, str],
                     summaries: list[Summary], chart: str | None = None) -> str:
    def bullets(items: dict[str, str]) -> str:
        return "\n".join(f"- {key}: {value}" for key, value in items.items())

    sections = [
        "# Benchmark results",
        "Generated by `benchmarks/run.py`; overwritten by every run. How to read it: "
        "benchmarks/README.md. Compare ratios from one run, not absolute figures "
        "across runs or machines.",
        f"- date: {date}\n- command: `{command}`\n{bullets(settings)}",
        "## Machine\n\n" + bullets(machine),
        "## Versions\n\n" + bullets(versions),
    ]
    results = results_table(summaries)
    if results:
        sections.append("## Results\n\n" + results)
    memory = memory_table(summaries)
    if memory:
        sections.append("## Memory per idle connection\n\n" + memory)
    ratios = ratios_table(summaries)
    if ratios:
        sections.append("## dartle against the anchors\n\n" + ratios)
    if chart:
        sections.append(f"## Chart\n\n![server CPU per request, by scenario]({chart})")
    failures = failures_section(summaries)
    if failures:
        sections.append("## Failures\n\n" + failures)
    return "\n\n".join(sections) + "\n"
