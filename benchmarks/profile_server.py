"""Profile one server under one scenario's load with py-spy, and print its hot spots.

    python benchmarks/profile_server.py [--stack dartle] [--scenario plaintext]
                                        [--duration 10] [--native] [--idle]

The server runs as in run.py (bench venv, pinned to core 0, wrk on core 1). While wrk
loads it, `py-spy record` samples it by PID; the samples are written as collapsed stacks
to benchmarks/out/profile-SERVER-SCENARIO.txt (open it in https://www.speedscope.app or
feed it to flamegraph.pl) and summarised here: the functions with the most samples on
top of the stack (self) and anywhere in it (inclusive). py-spy pauses the process to
sample it, so throughput while profiling is no benchmark figure.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import re
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import benchenv, cpu, servers, wrk
from benchmarks.scenarios import SCENARIOS
from benchmarks.servers import SERVERS
from examples.techempower import postgres

# Scenarios loaded by wrk (the others have their own load generators).
WRK_SCENARIOS = [name for name, scenario in SCENARIOS.items() if scenario.load == "wrk"]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benchmarks/profile_server.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", "--server", dest="stack", default="dartle",
                        help="a stack of the scenario: a server's name, or e.g. 'dartle on"
                             " uvicorn' in the framework scenarios (default: dartle)")
    parser.add_argument("--scenario", default="plaintext", choices=WRK_SCENARIOS)
    parser.add_argument("--duration", type=int, default=10, help="seconds of load (default 10)")
    parser.add_argument("--rate", type=int, default=250, help="samples per second (default 250)")
    parser.add_argument("--native", action="store_true",
                        help="include C frames (uvloop, httptools, CPython) in the stacks")
    parser.add_argument("--idle", action="store_true",
                        help="keep samples of threads waiting (e.g. in epoll): shows idle time")
    parser.add_argument("--perf", action="store_true",
                        help="use Linux perf instead of py-spy: CPU per binary (kernel,"
                             " libpython, uvloop, httptools) and per symbol, syscalls/request")
    parser.add_argument("--top", type=int, default=25, help="rows per table (default 25)")
    return parser.parse_args(argv)


_LINE = re.compile(r":\d+\)$")


def summarise(collapsed: str, top: int) -> str:
    """Sample counts from py-spy's collapsed stacks: per function, self and inclusive,
    and per source line, self (which line of a hot function is the costly one)."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    lines_own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        lines_own[frames[-1]] += count
        functions = [_LINE.sub(")", frame) for frame in frames]
        own[functions[-1]] += count
        for function in set(functions):
            inclusive[function] += count
    if not total:
        return "no samples (did py-spy attach? see its message above)"
    report = [f"{total} samples"]
    for title, counter in (("self, per function (on top of the stack)", own),
                           ("inclusive, per function (anywhere in the stack)", inclusive),
                           ("self, per line", lines_own)):
        report += ["", f"{title}:", "    %  samples  frame"]
        for frame, count in counter.most_common(top):
            report.append(f"{count / total * 100:5.1f} {count:8d}  {frame}")
    return "\n".join(report)


def _percent_lines(report: str, top: int) -> list[str]:
    rows = [line.rstrip() for line in report.splitlines()
            if line.strip() and not line.startswith("#")]
    return rows[:top]


def perf_summary(data: Path, stat_output: str, requests: int, top: int) -> str:
    """Where the server's CPU went (kernel, libpython, C extensions), and syscalls/request."""
    lines = []
    for line in stat_output.splitlines():  # perf stat -x, : value,unit,event,...
        fields = line.split(",")
        if len(fields) > 2 and fields[0].isdigit() and requests:
            lines.append(f"{fields[2]}: {int(fields[0]) / requests:.2f} per request")
    for sort, title in (("dso", "CPU samples per binary"),
                        ("dso,sym", "CPU samples per symbol")):
        report = subprocess.run(["perf", "report", "-i", str(data), "--sort", sort,
                                 "--stdio", "-g", "none"], capture_output=True,
                                text=True).stdout
        lines += ["", f"{title}:", *_percent_lines(report, top)]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    scenario = SCENARIOS[args.scenario]
    stacks = {stack.name: stack for stack in scenario.stacks}
    if args.stack not in stacks:
        raise SystemExit(f"{args.scenario} has no stack {args.stack!r}; it has: "
                         + ", ".join(stacks))
    stack = stacks[args.stack]
    wrk_path = benchenv.ensure_wrk()
    python = benchenv.ensure_venv()
    name = f"{stack.name.replace(' ', '-')}-{args.scenario}"
    out = benchenv.OUT / (f"perf-{name}.data" if args.perf else f"profile-{name}.txt")
    with contextlib.ExitStack() as services:
        env: dict[str, str] = {}
        if scenario.postgres:  # the TechEmpower scenarios: a database on the load core
            env["TFB_DATABASE_URL"] = services.enter_context(postgres.running("1"))
        server = services.enter_context(
            servers.started(SERVERS[stack.server], python, stack, scenario, "0", env))
        wrk.run(wrk_path, scenario, server.port, 2, "1")  # warm-up
        pids = ",".join(map(str, [server.pid, *cpu.descendants(server.pid)]))
        window = ["--", "sleep", str(args.duration)]
        if args.perf:
            profilers = [
                ["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-p", pids,
                 "-o", str(out), *window],
                ["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter,context-switches",
                 "-p", pids, *window],
            ]
        else:
            record = [str(python.parent / "py-spy"), "record", "--pid", str(server.pid),
                      "--format", "raw", "--rate", str(args.rate),
                      "--duration", str(args.duration), "-o", str(out)]
            profilers = [record + ["--native"] * args.native + ["--idle"] * args.idle]
        # Profilers run on the load core: the server's core stays the server's.
        running = [subprocess.Popen(["taskset", "-c", "1", *cmd], stderr=subprocess.PIPE,
                                    text=True) for cmd in profilers]
        result = wrk.run(wrk_path, scenario, server.port, args.duration, "1")
        errors = [proc.communicate(timeout=args.duration + 60)[1] for proc in running]
    print(f"wrk while profiling: {result.requests_per_second:,.0f} requests/s"
          + (f" ({'; '.join(result.problems)})" if result.problems else ""))
    failed = [proc for proc in running if proc.returncode != 0]
    if failed or not out.exists():
        print("the profiler failed: it needs root, or CAP_SYS_PTRACE / perf_event rights\n"
              + "\n".join(errors))
        return 1
    print(f"samples: {out}\n")
    if args.perf:
        print(perf_summary(out, errors[1], result.requests, args.top))
    else:
        print(summarise(out.read_text(), args.top))
    return 0


if __name__ == "__main__":
    parse_args(sys.argv[1:])  # --help and bad arguments answer at once, not after the lock
    with benchenv.exclusive():
        sys.exit(main(sys.argv[1:]))
