"""Measure dartle against the anchor servers, in one run, as ratios.

    python benchmarks/run.py [SCENARIO ...] [--servers dartle,uvicorn] [--duration 10]
    make bench BENCH_ARGS="plaintext --quick"

For each scenario, each server in turn: start it on a free loopback port (pinned to one
core), wait until it answers, warm it up, read its CPU time, run wrk (pinned to another
core), read its CPU time again, check it still answers, stop it by PID. Prints a table
and writes benchmarks/RESULTS.md. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import shutil
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import benchenv, cpu, load, report, servers
from benchmarks.load import SCENARIOS, Scenario
from benchmarks.report import Measurement
from benchmarks.servers import SERVERS, ServerFailed, ServerSpec

RESULTS = benchenv.BENCH_DIR / "RESULTS.md"
SERVER_CPU, LOAD_CPU = "0", "1"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="scenarios:\n" + "\n".join(f"  {s.name:<12} {s.description}"
                                          for s in SCENARIOS.values())
        + "\nservers: " + ", ".join(SERVERS))
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help="scenarios to run (default: all)")
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help="comma-separated servers (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds of measured load per server (default: %(default)s)")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="seconds of discarded load before measuring (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every server this many times, interleaved; report medians")
    parser.add_argument("--quiet-wait", type=float, default=10.0, metavar="S",
                        help="before each server, wait up to S seconds for both cores to be"
                             " idle (other people's jobs); 0: don't (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke check: 3 s of load, 1 s of warm-up")
    parser.add_argument("--no-pin", action="store_true",
                        help="do not pin server and wrk to separate cores with taskset")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="markdown file to write (default: benchmarks/RESULTS.md)")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 3.0, 1.0
    unknown = [name for name in args.scenarios if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    args.scenarios = args.scenarios or list(SCENARIOS)
    args.servers = [name.strip() for name in args.servers.split(",") if name.strip()]
    unknown = [name for name in args.servers if name not in SERVERS]
    if unknown:
        parser.error(f"unknown server(s) {', '.join(unknown)}; known: {', '.join(SERVERS)}")
    if args.duration < 1 or args.rounds < 1:
        parser.error("--duration must be at least 1 second and --rounds at least 1")
    return args


Cores = tuple[str, str]  # (the server's core, wrk's core)


def pinning(no_pin: bool) -> tuple[Cores | None, str]:
    """Cores for (server, wrk), or None, and how that was decided, for RESULTS.md."""
    if no_pin:
        return None, "off (--no-pin)"
    if not shutil.which("taskset"):
        return None, "off (taskset not found: install util-linux)"
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return None, "off (fewer than 2 cores)"
    cores = (str(available[0]), str(available[1]))
    return cores, f"server on core {cores[0]}, wrk on core {cores[1]} (taskset)"


def measure(spec: ServerSpec, scenario: Scenario, args: argparse.Namespace, python: Path,
            wrk: str, cores: Cores | None) -> Measurement:
    """One server under one scenario: a Measurement, with `failure` set if it is no result."""
    result = Measurement(scenario.name, spec.name)
    server_cpu, load_cpu = cores or (None, None)
    try:
        with servers.started(spec, python, scenario.app, scenario.expected_body,
                             server_cpu) as server:
            try:
                load.warm_up(wrk, scenario, server.port, args.warmup, load_cpu)
                ticks = [cpu.core_ticks(core) for core in cores or ()]
                before = cpu.tree_cpu(server.pid)
                result.wrk = load.run_wrk(wrk, scenario, server.port, args.duration, load_cpu)
                result.server_cpu = cpu.tree_cpu(server.pid) - before
                if cores:
                    # how much of each core went to anything but the server / wrk
                    result.others_percent = (
                        cpu.other_load(ticks[0], cpu.core_ticks(cores[0]),
                                       result.server_cpu_seconds),
                        cpu.other_load(ticks[1], cpu.core_ticks(cores[1]),
                                       result.wrk.cpu_seconds))
                if result.wrk.problems:
                    result.failure = "; ".join(result.wrk.problems)
                # A server that crashed or wedged under load must not look fast.
                server.check(scenario.expected_body)
            finally:
                result.log_tail = server.log_tail()
    except ServerFailed as exc:
        result.failure = result.failure or str(exc)
        result.log_tail = result.log_tail or exc.log_tail
    return result


def load_shape(scenario: Scenario) -> str:
    shape = f"{scenario.name}: wrk -t1 -c{scenario.connections}"
    return shape + (f", {scenario.pipeline} pipelined" if scenario.pipeline > 1 else "")


def progress(run: Measurement) -> str:
    if run.failure:
        return f"  {run.server:<10} FAILED: {run.failure}"
    assert run.wrk is not None
    return (f"  {run.server:<10} {run.wrk.requests_per_second:>10,.0f} req/s  "
            f"{run.cpu_us_per_request:6.1f} µs CPU/request")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    wrk = benchenv.ensure_wrk()
    python = benchenv.ensure_venv()
    cores, pin_note = pinning(args.no_pin)
    machine = benchenv.machine_facts()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{date}; {machine['cpu model']} x{machine['cpus (nproc)']}; pinning: {pin_note}")

    measurements: list[Measurement] = []
    for name in args.scenarios:
        scenario = SCENARIOS[name]
        print(f"{scenario.name}: {scenario.description} "
              f"({args.duration:g} s each, {args.rounds} round(s))", flush=True)
        for _ in range(args.rounds):
            for server_name in args.servers:
                if not SERVERS[server_name].serves(scenario.name):
                    continue
                if cores and args.quiet_wait > 0:
                    cpu.wait_for_quiet(list(cores), args.quiet_wait)
                run = measure(SERVERS[server_name], scenario, args, python, wrk,
                              cores)
                measurements.append(run)
                print(progress(run), flush=True)

    summaries = report.summarise(measurements)
    dists = [SERVERS[name].distribution for name in args.servers]
    versions = benchenv.distribution_versions([*dists, "uvloop", "httptools"])
    if "dartle" in versions:
        versions["dartle"] += f" (git {benchenv.git_revision()})"
    versions["wrk"] = benchenv.wrk_version(wrk)
    settings = {
        "load": "; ".join(load_shape(SCENARIOS[name]) for name in args.scenarios),
        "duration": f"{args.duration:g} s measured after {args.warmup:g} s warm-up, "
                    f"{args.rounds} round(s) (medians)",
        "pinning": pin_note,
        "quiet wait": (f"up to {args.quiet_wait:g} s before each server for both cores to be"
                       f" under {cpu.NOISY_PERCENT:g}% busy" if args.quiet_wait > 0
                       else "off"),
    }
    command = "python benchmarks/run.py " + shlex.join(argv)
    text = report.results_markdown(date=date, command=command.strip(), settings=settings,
                                   machine=machine, versions=versions, summaries=summaries)
    args.results.write_text(text)
    print()
    print(report.results_table(summaries))
    ratios = report.ratios_table(summaries)
    if ratios:
        print()
        print(ratios)
    print(f"\nwritten to {args.results}")
    return 1 if any(s.failure for s in summaries) else 0


if __name__ == "__main__":
    with benchenv.exclusive():
        sys.exit(main(sys.argv[1:]))
