"""The load generators' common ground: what one run reports, and which generator a scenario uses.

Each generator (wrk.py, h2load.py, wsload.py) warms the server up, then calls
`window.start()` right before the measured load and `window.stop()` right after, so
that the server's CPU time is read around exactly the requests it counts.
"""

from __future__ import annotations

import math
import resource
import statistics
from dataclasses import dataclass, field
from typing import Protocol

from benchmarks.scenarios import Scenario

# Load generators keep every connection busy: as soon as a response (or a pipelined
# batch) is in, the next request leaves. So responses ~= connections x depth x seconds /
# mean latency (Little's law). One starved of CPU by other jobs gets half of that or
# less; a tenth means connections stopped getting answers.
STALLED_FRACTION = 0.1


@dataclass
class LoadResult:
    """What one measured load reported; `problems` lists why it cannot count as a result.

    `requests` counts responses (WebSocket: echoed messages).
    """

    requests: int = 0
    seconds: float = 0.0
    requests_per_second: float = 0.0
    latency_us: dict[str, float] = field(default_factory=dict)  # "mean", "50%"... -> µs
    non_2xx_3xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    cpu_seconds: float = 0.0  # the load generator's own user+sys time
    output: str = ""
    problems: list[str] = field(default_factory=list)


class Window(Protocol):
    """Told when the measured load starts and stops (the harness reads CPU counters)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class NoWindow:
    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


def children_cpu() -> float:
    """User+sys seconds of this process's waited-for children (the load generators)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def latency_summary(latencies_us: list[float]) -> dict[str, float]:
    """Mean, p50 and p99 (nearest rank) of per-request latencies, in µs; {} for none."""
    if not latencies_us:
        return {}
    ordered = sorted(latencies_us)
    count = len(ordered)
    return {
        "mean": statistics.fmean(ordered),
        "50%": ordered[min(count - 1, math.ceil(count * 0.50) - 1)],
        "99%": ordered[min(count - 1, math.ceil(count * 0.99) - 1)],
    }


def stalled(result: LoadResult, scenario: Scenario) -> str | None:
    """A problem if the generator counted far fewer responses than its own latency implies."""
    mean_us = result.latency_us.get("mean")
    if not result.requests or not mean_us or not result.seconds:
        return None
    in_flight = scenario.connections * scenario.pipeline * scenario.streams
    expected = in_flight * result.seconds / (mean_us / 1e6)
    if result.requests >= STALLED_FRACTION * expected:
        return None
    return (f"only {result.requests} responses where the mean latency implies about "
            f"{expected:.0f}: connections stalled")
