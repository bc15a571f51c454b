"""Measure dartle against the anchor servers and frameworks, in one run, as ratios.

    python benchmarks/run.py [SCENARIO ...] [--servers dartle,uvicorn] [--duration 8]
    make bench BENCH_ARGS="plaintext --quick"

For each scenario, each stack in turn: start the server on a free loopback port
(pinned to one core), wait until it gives the scenario's right answer, warm it up,
read its CPU time, run the load generator (pinned to the other core), read its CPU
time again, check it still answers right, stop it by PID. Prints the tables and
writes benchmarks/RESULTS.md and RESULTS.png. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import benchenv, cpu, h2load, idle, report, servers, wrk, wsload
from benchmarks.load import LoadResult, Window
from benchmarks.report import Measurement
from benchmarks.scenarios import SCENARIOS, Scenario, Stack
from benchmarks.servers import SERVERS, ServerFailed
from examples.techempower import postgres

RESULTS = benchenv.BENCH_DIR / "RESULTS.md"
# Distributions whose versions RESULTS.md lists besides the servers'.
LIBRARIES = ("starlette", "fastapi", "pydantic", "uvloop", "httptools", "websockets")


def pick_scenarios(name: str) -> list[str]:
    """A scenario's name, or a family's: "tfb" is every "tfb-..." scenario."""
    if name in SCENARIOS:
        return [name]
    return [scenario for scenario in SCENARIOS if scenario.startswith(name + "-")]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="scenarios:\n" + "\n".join(f"  {s.name:<20} {s.description}"
                                          for s in SCENARIOS.values())
        + "\nservers: " + ", ".join(SERVERS))
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help="scenarios to run, or families of them (h2: every h2-...;"
                             " default: all)")
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help="comma-separated servers: only the stacks they serve run"
                             " (default: all)")
    parser.add_argument("--duration", type=float, default=7.0,
                        help="seconds of measured load per stack (default: %(default)s)")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="seconds of discarded load before measuring (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every stack this many times, interleaved; report medians")
    parser.add_argument("--quiet-wait", type=float, default=3.0, metavar="S",
                        help="before each stack, wait up to S seconds for both cores to be"
                             " idle (other people's jobs); 0: don't (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke check: 3 s of load, 1 s of warm-up")
    parser.add_argument("--no-pin", action="store_true",
                        help="do not pin server and load generator to cores with taskset")
    parser.add_argument("--no-chart", action="store_true", help="do not draw RESULTS.png")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="markdown file to write (default: benchmarks/RESULTS.md);"
                             " the chart goes beside it, as .png")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 3.0, 1.0
    picked = {name: pick_scenarios(name) for name in args.scenarios}
    unknown = [name for name, found in picked.items() if not found]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}"
                     " (or a family: h2, framework, tfb...)")
    chosen = [scenario for found in picked.values() for scenario in found]
    args.scenarios = list(dict.fromkeys(chosen)) or list(SCENARIOS)
    args.servers = [name.strip() for name in args.servers.split(",") if name.strip()]
    unknown = [name for name in args.servers if name not in SERVERS]
    if unknown:
        parser.error(f"unknown server(s) {', '.join(unknown)}; known: {', '.join(SERVERS)}")
    if args.duration < 1 or args.rounds < 1:
        parser.error("--duration must be at least 1 second and --rounds at least 1")
    return args


@dataclass(frozen=True)
class Cores:
    """Where the server and the load generator run (taskset lists)."""

    server: str
    load: str
    shared: bool  # both on both cores: one "others" figure for the pair


def pinning(no_pin: bool) -> tuple[tuple[str, str] | None, str]:
    """Two cores (server's, load generator's), or None, and how that was decided."""
    if no_pin:
        return None, "off (--no-pin)"
    if not shutil.which("taskset"):
        return None, "off (taskset not found: install util-linux)"
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return None, "off (fewer than 2 cores)"
    pair = (str(available[0]), str(available[1]))
    return pair, (f"server on core {pair[0]}, load generator on core {pair[1]} (taskset); "
                  f"scenarios with shared pinning (workers): both on cores {','.join(pair)}")


def cores_for(scenario: Scenario, pair: tuple[str, str] | None) -> Cores | None:
    if pair is None:
        return None
    if scenario.pinning == "shared":
        both = ",".join(pair)
        return Cores(both, both, shared=True)
    return Cores(pair[0], pair[1], shared=False)


class CpuWindow(Window):
    """The server's CPU time, and the cores' business, over the measured load."""

    def __init__(self, pid: int, cores: Cores | None) -> None:
        self.pid = pid
        self.cores = cores
        self.names = sorted({*cores.server.split(","), *cores.load.split(",")}) if cores else []
        self.ticks: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {}
        self.cpu_before = self.server_cpu = cpu.CpuTimes(0.0, 0.0)
        self.began: dict[str, tuple[int, int, int]] = {}

    def start(self) -> None:
        self.began = {core: cpu.core_ticks(core) for core in self.names}
        self.cpu_before = cpu.tree_cpu(self.pid)

    def stop(self) -> None:
        self.server_cpu = cpu.tree_cpu(self.pid) - self.cpu_before
        self.ticks = {core: (self.began[core], cpu.core_ticks(core)) for core in self.names}

    def others(self, load_cpu_seconds: float) -> tuple[float, ...] | None:
        """Share of the server's and the load's cores used by anything else, in percent."""
        if self.cores is None or not self.ticks:
            return None
        if self.cores.shared:
            before = _added([began for began, _ in self.ticks.values()])
            after = _added([ended for _, ended in self.ticks.values()])
            own = self.server_cpu.total + load_cpu_seconds
            return (cpu.other_load(before, after, own),)
        server_core, load_core = self.ticks[self.cores.server], self.ticks[self.cores.load]
        return (cpu.other_load(*server_core, self.server_cpu.total),
                cpu.other_load(*load_core, load_cpu_seconds))


def _added(ticks: list[tuple[int, int, int]]) -> tuple[int, int, int]:
    """Several cores' (busy, steal, total) ticks as if they were one core's."""
    busy, steal, total = (sum(column) for column in zip(*ticks, strict=True))
    return busy, steal, total


@dataclass(frozen=True)
class Tools:
    python: Path  # the bench venv's
    wrk: str | None
    h2load: str | None


def run_load(tools: Tools, scenario: Scenario, port: int, args: argparse.Namespace,
             cores: Cores | None, window: Window) -> LoadResult:
    load_cpus = cores.load if cores else None
    if scenario.load == "wrk":
        if tools.wrk is None:
            return LoadResult(problems=[benchenv.tool_help("wrk")])
        return wrk.measure(tools.wrk, scenario, port, args.duration, args.warmup, load_cpus,
                           window)
    if scenario.load == "h2load":
        if tools.h2load is None:
            return LoadResult(problems=[benchenv.tool_help("h2load")])
        return h2load.measure(tools.h2load, scenario, port, args.duration, args.warmup,
                              load_cpus, window)
    if scenario.load == "websocket":
        return wsload.measure(str(tools.python), scenario, port, args.duration, args.warmup,
                              load_cpus, window)
    raise ValueError(f"{scenario.name}: unknown load {scenario.load!r}")


class Services:
    """What scenarios need besides a server (PostgreSQL): started on first use, on the load
    generator's core, and stopped when the run ends."""

    def __init__(self, exit_stack: contextlib.ExitStack, cpus: str | None) -> None:
        self.exit_stack = exit_stack
        self.cpus = cpus
        self.database_url: str | None = None
        self.problem: str | None = None

    def environment(self, scenario: Scenario) -> dict[str, str]:
        """The servers' extra environment; raises ServerFailed if a service cannot start."""
        if not scenario.postgres:
            return {}
        if self.database_url is None and self.problem is None:
            if postgres.bin_dir() is None:
                benchenv.install_debian_package("postgresql", "PostgreSQL is missing")
            try:
                print("  (starting PostgreSQL for the TechEmpower scenarios)", flush=True)
                self.database_url = self.exit_stack.enter_context(postgres.running(self.cpus))
            except (postgres.PostgresMissing, RuntimeError, OSError) as exc:
                self.problem = f"PostgreSQL: {exc}"
        if self.problem is not None:
            raise ServerFailed(self.problem)
        assert self.database_url is not None
        return {"TFB_DATABASE_URL": self.database_url}


def measure(stack: Stack, scenario: Scenario, args: argparse.Namespace, tools: Tools,
            pair: tuple[str, str] | None, services: Services | None = None) -> Measurement:
    """One stack under one scenario: a Measurement, with `failure` set if it is no result."""
    result = Measurement(scenario.name, stack.name)
    spec = SERVERS[stack.server]
    if not spec.supports(scenario.mode):
        result.unsupported = f"{spec.name} does not serve {scenario.mode}"
        return result
    cores = cores_for(scenario, pair)
    try:
        env = services.environment(scenario) if services else {}
        with servers.started(spec, tools.python, stack, scenario,
                             cores.server if cores else None, env) as server:
            try:
                if scenario.load == "idle":
                    result.idle = idle.measure(str(tools.python), scenario, server.pid,
                                               server.port, cores.load if cores else None)
                    problems = result.idle.problems
                else:
                    window = CpuWindow(server.pid, cores)
                    result.load = run_load(tools, scenario, server.port, args, cores, window)
                    result.server_cpu = window.server_cpu
                    result.others_percent = window.others(result.load.cpu_seconds)
                    problems = result.load.problems
                if problems:
                    result.failure = "; ".join(problems)
                # A server that crashed or wedged under load must not look fast.
                server.check()
            finally:
                result.log_tail = server.log_tail()
    except ServerFailed as exc:
        result.failure = result.failure or str(exc)
        result.log_tail = result.log_tail or exc.log_tail
    return result


def load_shape(scenario: Scenario) -> str:
    if scenario.load == "h2load":
        return f"{scenario.name}: h2load -t1 -c{scenario.connections} -m{scenario.streams}"
    if scenario.load == "websocket":
        return f"{scenario.name}: benchmarks/wsload.py, {scenario.connections} clients"
    if scenario.load == "idle":
        return f"{scenario.name}: benchmarks/idle.py, {scenario.connections:,} connections"
    shape = f"{scenario.name}: wrk -t1 -c{scenario.connections}"
    return shape + (f", {scenario.pipeline} pipelined" if scenario.pipeline > 1 else "")


def progress(run: Measurement) -> str:
    if run.unsupported:
        return f"  {run.stack:<22} not supported: {run.unsupported}"
    if run.failure:
        return f"  {run.stack:<22} FAILED: {run.failure}"
    if run.idle is not None:
        return (f"  {run.stack:<22} {run.idle.kept:>10,} connections  "
                f"{run.idle.bytes_per_connection / 1024:6.1f} KiB each")
    assert run.load is not None
    return (f"  {run.stack:<22} {run.load.requests_per_second:>10,.0f} req/s  "
            f"{run.cpu_us_per_request:6.1f} µs CPU/request")


def draw_chart(summaries: list[report.Summary], python: Path, png: Path) -> str | None:
    """Draw the PNG with matplotlib from the bench venv; None (and a note) if that failed."""
    data = benchenv.OUT / "chart.json"
    png.parent.mkdir(parents=True, exist_ok=True)
    data.write_text(json.dumps(report.chart_data(summaries)))
    proc = subprocess.run([str(python), "-m", "benchmarks.chart", str(data), str(png)],
                          cwd=benchenv.ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(benchenv.ROOT)})
    if proc.returncode != 0:
        print(f"(no chart: {proc.stderr.strip()[-300:]})")
        return None
    return png.name


def run_scenarios(scenarios: list[Scenario], args: argparse.Namespace, tools: Tools,
                  pair: tuple[str, str] | None, services: Services) -> list[Measurement]:
    """Every selected stack of every scenario, `--rounds` times, interleaved."""
    measurements: list[Measurement] = []
    for scenario in scenarios:
        stacks = [stack for stack in scenario.stacks if stack.server in args.servers]
        print(f"{scenario.name}: {scenario.description} "
              f"({args.duration:g} s each, {args.rounds} round(s))", flush=True)
        for round_number in range(args.rounds):
            for stack in stacks:
                supported = SERVERS[stack.server].supports(scenario.mode)
                if not supported and round_number > 0:
                    continue  # said once is enough
                if supported and pair and args.quiet_wait > 0:
                    cpu.wait_for_quiet(list(pair), args.quiet_wait)
                run = measure(stack, scenario, args, tools, pair, services)
                measurements.append(run)
                print(progress(run), flush=True)
    return measurements


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    scenarios = [SCENARIOS[name] for name in args.scenarios]
    loads = {scenario.load for scenario in scenarios}
    tools = Tools(python=benchenv.ensure_venv(),
                  wrk=benchenv.ensure_wrk() if "wrk" in loads else None,
                  h2load=benchenv.find_tool("h2load") if "h2load" in loads else None)
    idle.raise_fd_limit()  # servers inherit it: the idle scenario holds 10,000 sockets
    pair, pin_note = pinning(args.no_pin)
    machine = benchenv.machine_facts()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{date}; {machine['cpu model']} x{machine['cpus (nproc)']}; pinning: {pin_note}")

    began = time.monotonic()
    with contextlib.ExitStack() as exit_stack:
        services = Services(exit_stack, pair[1] if pair else None)
        measurements = run_scenarios(scenarios, args, tools, pair, services)
    elapsed = time.monotonic() - began

    summaries = report.summarise(measurements)
    used = {stack.server for scenario in scenarios for stack in scenario.stacks
            if stack.server in args.servers}
    dists = [SERVERS[name].distribution for name in SERVERS if name in used]
    versions = benchenv.distribution_versions([*dict.fromkeys([*dists, *LIBRARIES])])
    if "dartle" in versions:
        versions["dartle"] += f" (git {benchenv.git_revision()})"
    if tools.wrk:
        versions["wrk"] = benchenv.wrk_version(tools.wrk)
    if tools.h2load:
        versions["h2load"] = benchenv.h2load_version(tools.h2load)
    settings = {
        "load": "; ".join(load_shape(scenario) for scenario in scenarios),
        "duration": f"{args.duration:g} s measured after {args.warmup:g} s warm-up, "
                    f"{args.rounds} round(s) (medians)",
        "pinning": pin_note,
        "quiet wait": (f"up to {args.quiet_wait:g} s before each stack for both cores to be"
                       f" under {cpu.NOISY_PERCENT:g}% busy" if args.quiet_wait > 0
                       else "off"),
        "run time": f"{elapsed / 60:.1f} minutes",
    }
    chart = None if args.no_chart else draw_chart(summaries, tools.python,
                                                  args.results.with_suffix(".png"))
    command = "python benchmarks/run.py " + shlex.join(argv)
    text = report.results_markdown(date=date, command=command.strip(), settings=settings,
                                   machine=machine, versions=versions, summaries=summaries,
                                   chart=chart)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(text)
    for table in (report.results_table(summaries), report.memory_table(summaries),
                  report.ratios_table(summaries)):
        if table:
            print()
            print(table)
    print(f"\nwritten to {args.results}" + (f" and {chart}" if chart else ""))
    return 1 if any(s.failure for s in summaries) else 0


if __name__ == "__main__":
    parse_args(sys.argv[1:])  # --help and bad arguments answer at once, not after the lock
    with benchenv.exclusive():
        sys.exit(main(sys.argv[1:]))
