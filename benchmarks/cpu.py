"""CPU time from /proc: of a server's process tree, and of whole cores.

The figure the benchmark reports is the server's CPU time per request; the per-core
counters tell whether anything else competed with the server for its core.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import NamedTuple

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
# Above this share of a core used by others (or stolen by the hypervisor), a run is
# noisy: its requests/s are suspect; CPU per request holds better.
NOISY_PERCENT = 10.0


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after it.
    return text[text.rindex(")") + 2:].split()


def start_time(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[19] if fields else None  # field 22: starttime, in ticks since boot


def descendants(pid: int) -> list[int]:
    """PIDs of every live descendant of `pid` (workers, their helpers)."""
    parent_of: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields:
                parent_of[int(entry.name)] = int(fields[1])  # field 4: ppid
    found: list[int] = []
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, parent in parent_of.items() if parent == current]
        found.extend(children)
        frontier.extend(children)
    return found


class CpuTimes(NamedTuple):
    """CPU seconds spent in user space (the server's code) and in the kernel (syscalls)."""

    user: float
    system: float

    @property
    def total(self) -> float:
        return self.user + self.system

    def __sub__(self, other: tuple[float, ...]) -> CpuTimes:
        return CpuTimes(self.user - other[0], self.system - other[1])


def tree_cpu(pid: int) -> CpuTimes:
    """CPU times of `pid` and its descendants, including reaped children.

    Fields 14-17 of /proc/PID/stat: utime, stime, and cutime, cstime (children that
    already exited and were waited for). A live child is counted by its own line, so
    nothing is counted twice.
    """
    user = system = 0
    for member in (pid, *descendants(pid)):
        fields = _stat_fields(member)
        if fields:
            user += int(fields[11]) + int(fields[13])
            system += int(fields[12]) + int(fields[14])
    return CpuTimes(user / TICKS_PER_SECOND, system / TICKS_PER_SECOND)


def core_ticks(cpu: str) -> tuple[int, int, int]:
    """(busy, steal, total) clock ticks of one core since boot, from /proc/stat.

    Busy counts every process on that core, ours or not; steal is time the hypervisor
    gave the core to another machine. Both tell how quiet the server's core was.
    """
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name == f"cpu{cpu}":
            user, nice, system, idle, iowait, irq, softirq, steal = map(int, values[:8])
            busy = user + nice + system + irq + softirq
            return busy, steal, busy + idle + iowait + steal
    raise ValueError(f"no cpu{cpu} in /proc/stat")


def other_load(before: tuple[int, int, int], after: tuple[int, int, int],
               own_seconds: float) -> float:
    """Percent of a core taken by anything but our process on it (steal included)."""
    busy, steal, total = (b - a for a, b in zip(before, after, strict=True))
    if total <= 0:
        return 0.0
    others = max(0.0, busy / TICKS_PER_SECOND - own_seconds)
    return (others + steal / TICKS_PER_SECOND) / (total / TICKS_PER_SECOND) * 100


def wait_for_quiet(cores: list[str], limit: float) -> float:
    """Wait (at most `limit` s) until no core in `cores` is busier than the noise mark.

    Returns the busiest core's load in the last 1 s window, in percent.
    """
    deadline = time.monotonic() + limit
    told = False
    while True:
        before = [core_ticks(core) for core in cores]
        time.sleep(1.0)  # the sampling window
        busiest = 0.0
        for core, (busy0, steal0, total0) in zip(cores, before, strict=True):
            busy1, steal1, total1 = core_ticks(core)
            if total1 > total0:
                share = (busy1 - busy0 + steal1 - steal0) / (total1 - total0) * 100
                busiest = max(busiest, share)
        if busiest <= NOISY_PERCENT:
            return busiest
        if time.monotonic() >= deadline:
            print(f"  (still {busiest:.0f}% busy after {limit:g} s: measuring anyway)",
                  flush=True)
            return busiest
        if not told:
            print(f"  (waiting up to {limit:g} s for a quiet machine: a core is "
                  f"{busiest:.0f}% busy)", flush=True)
            told = True
