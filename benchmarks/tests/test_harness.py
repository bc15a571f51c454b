"""The benchmark harness against real servers and a real wrk: it must measure what it
claims, and never report a broken server as a fast one. No speed is asserted here.

Run: .venv/bin/pytest benchmarks/tests -q
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from benchmarks import benchenv, cpu, load, probes, report, run, servers, wrk
from benchmarks.load import LoadResult
from benchmarks.report import Measurement
from benchmarks.scenarios import SCENARIOS, Request, Stack
from benchmarks.servers import ServerSpec
from tests.support.servers import run_server
from tests.support.services import require_binary

HELLO = "benchmarks.apps.hello:app"
DEV_PYTHON = Path(sys.executable)  # the dev venv has uvicorn too; no bench venv needed


@pytest.fixture(scope="module")
def wrk_path() -> str:
    return require_binary("wrk")


def test_hello_app_answers_plain_text() -> None:
    with run_server(HELLO, kind="uvicorn") as server:
        status, body = probes.http_request(server.port, Request())
    assert (status, body) == (200, b"Hello, world!")


def test_plaintext_run_is_parsed(wrk_path: str) -> None:
    with run_server(HELLO, "--no-access-log", kind="uvicorn") as server:
        result = wrk.run(wrk_path, SCENARIOS["plaintext"], server.port, 1, None)
    assert result.problems == [], result.output
    assert result.requests > 0
    assert result.requests_per_second > 0
    assert result.seconds > 0
    assert {"mean", "50%", "99%"} <= result.latency_us.keys()
    assert result.latency_us["50%"] <= result.latency_us["99%"]
    assert result.cpu_seconds > 0


def test_pipelined_run_counts_every_response(wrk_path: str) -> None:
    with run_server(HELLO, "--no-access-log", kind="uvicorn") as server:
        result = wrk.run(wrk_path, SCENARIOS["pipelined"], server.port, 1, None)
    assert result.problems == [], result.output
    assert result.requests > 0
    # wrk's percentiles are not to be trusted when pipelining; its mean is kept
    assert list(result.latency_us) == ["mean"]
    assert result.latency_us["mean"] > 0


def test_error_responses_are_a_failure(wrk_path: str) -> None:
    with run_server("benchmarks.tests.apps:error", "--no-access-log", kind="uvicorn") as server:
        result = wrk.run(wrk_path, SCENARIOS["plaintext"], server.port, 1, None)
    assert result.non_2xx_3xx > 0
    assert any("not 2xx/3xx" in problem for problem in result.problems)


def test_a_server_that_never_answers_is_a_failure(wrk_path: str) -> None:
    with run_server("benchmarks.tests.apps:silent", "--no-access-log", kind="uvicorn") as server:
        result = wrk.run(wrk_path, SCENARIOS["plaintext"], server.port, 1, None)
    assert result.requests == 0
    assert any("stalled" in problem for problem in result.problems)


def test_parse_wrk_reads_socket_errors() -> None:
    output = textwrap.dedent("""\
        Running 1s test @ http://127.0.0.1:1/
          1 threads and 64 connections
          Thread Stats   Avg      Stdev     Max   +/- Stdev
            Latency     1.50ms  200.00us   3.00ms   90.00%
            Req/Sec    40.00k     1.00k   41.00k    90.00%
          Latency Distribution
             50%    1.40ms
             75%    1.60ms
             90%    1.80ms
             99%    2.50ms
          40000 requests in 1.00s, 4.00MB read
          Socket errors: connect 0, read 3, write 0, timeout 2
        Requests/sec:  40000.00
        Transfer/sec:      4.00MB
        """)
    result = wrk.parse(output)
    assert result.requests == 40000
    assert result.latency_us == {"mean": 1500.0, "50%": 1400.0, "75%": 1600.0,
                                 "90%": 1800.0, "99%": 2500.0}
    assert result.socket_errors == {"connect": 0, "read": 3, "write": 0, "timeout": 2}
    assert result.problems == ["socket errors: read 3, timeout 2"]


def test_parse_wrk_drops_zero_percentiles() -> None:
    output = textwrap.dedent("""\
          Thread Stats   Avg      Stdev     Max   +/- Stdev
            Latency    11.04ms   18.17ms  83.97ms    0.00%
          Latency Distribution
             50%   29.47ms
             75%    0.00us
             90%    0.00us
             99%    0.00us
          39500 requests in 2.00s, 4.97MB read
        Requests/sec:  19717.61
        """)
    result = wrk.parse(output)
    assert result.latency_us == {"mean": 11040.0, "50%": 29470.0}
    assert result.problems == []


def test_a_slow_server_is_not_a_stalled_one() -> None:
    # hypercorn on a busy machine: few responses, but as many as its latency allows
    slow = LoadResult(requests=8483, seconds=10.06, latency_us={"mean": 88430.0})
    assert load.stalled(slow, SCENARIOS["plaintext"]) is None
    pipelined = LoadResult(requests=150070, seconds=10.0, latency_us={"mean": 61800.0})
    assert load.stalled(pipelined, SCENARIOS["pipelined"]) is None


def test_answers_that_stop_coming_are_stalled_connections() -> None:
    # each connection answered once (1 ms), then nothing for the rest of 10 s
    result = LoadResult(requests=64, seconds=10.0, latency_us={"mean": 1000.0})
    problem = load.stalled(result, SCENARIOS["plaintext"])
    assert problem is not None and "stalled" in problem


def test_parse_wrk_without_a_count_is_a_problem() -> None:
    assert wrk.parse("unable to connect to 127.0.0.1:1 Connection refused\n").problems


def measure(server: str, scenario: str = "plaintext", app: str = HELLO,
            duration: str = "1") -> Measurement:
    """run.measure with the dev venv's Python (uvicorn, dartle, starlette; no bench venv)."""
    args = run.parse_args([scenario, "--duration", duration, "--warmup", "0"])
    tools = run.Tools(DEV_PYTHON, require_binary("wrk"), None)
    return run.measure(Stack(server, server, app), SCENARIOS[scenario], args, tools, None)


def test_measure_counts_server_cpu_per_request() -> None:
    result = measure("uvicorn")
    assert result.failure is None, (result.failure, result.log_tail)
    assert result.load is not None and result.load.requests > 0
    assert result.server_cpu_seconds > 0
    assert result.cpu_us_per_request > 0


def test_the_canned_floor_serves_the_hello_scenarios() -> None:
    for name in ("plaintext", "pipelined"):
        assert "canned" in [stack.server for stack in SCENARIOS[name].stacks]
    result = measure("canned")
    assert result.failure is None, (result.failure, result.log_tail)


def test_a_server_that_cannot_start_is_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = ServerSpec("broken", "broken", ("-c", "import sys; print('no app'); sys.exit(3)"))
    monkeypatch.setitem(servers.SERVERS, "broken", spec)
    result = measure("broken")
    assert result.load is None
    assert result.failure is not None and "status 3" in result.failure
    assert "no app" in result.log_tail


def test_a_server_with_the_wrong_answer_is_a_failure() -> None:
    result = measure("uvicorn", app="benchmarks.tests.apps:error")
    assert result.load is None
    assert result.failure is not None and "answered 500" in result.failure


def test_tree_cpu_counts_worker_processes() -> None:
    # The parent only waits; its child burns 0.3 s of CPU, then says so and blocks.
    child = "import sys, time\nwhile time.process_time() < 0.3: pass\nprint(1, flush=True)\n" \
            "sys.stdin.read()"
    parent = f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {child!r}])"
    proc = subprocess.Popen([sys.executable, "-c", parent], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"1\n"
        assert len(cpu.descendants(proc.pid)) == 1
        assert cpu.tree_cpu(proc.pid).total >= 0.3 - 0.02  # /proc counts in ticks
    finally:
        proc.kill()
        proc.wait()


def summary(stack: str, rps: float, cpu_seconds: float, failure: str | None = None,
            load_cpu_seconds: float = 0.5, scenario: str = "plaintext") -> report.Summary:
    result = LoadResult(requests=int(rps), seconds=1.0, requests_per_second=rps,
                        cpu_seconds=load_cpu_seconds)
    run_ = Measurement(scenario, stack, load=result, server_cpu=cpu.CpuTimes(cpu_seconds, 0.0),
                       failure=failure)
    return report.Summary(scenario, stack, [run_])


def test_ratios_compare_dartle_with_each_anchor() -> None:
    summaries = [summary("dartle", 20000, 0.2), summary("uvicorn", 10000, 0.2)]
    table = report.ratios_table(summaries)
    # dartle: 10 µs/request, uvicorn 20 µs/request; twice the requests/s
    assert "| plaintext | dartle | uvicorn | 0.50 | 2.00 |" in table


def test_a_saturated_load_generator_is_flagged() -> None:
    results = report.results_table([summary("canned", 100000, 0.9, load_cpu_seconds=0.97)])
    assert "load-bound" in results


def test_work_on_the_server_core_or_a_full_load_core_is_noise() -> None:
    def status(others: tuple[float, ...], load_cpu_seconds: float = 0.3) -> str:
        s = summary("dartle", 10000, 0.5, load_cpu_seconds=load_cpu_seconds)
        s.runs[0].others_percent = others
        row = report.results_table([s]).splitlines()[-1]
        return row.rsplit("|", 2)[1].strip()

    assert status((2.0, 3.0)) == "ok"
    assert status((25.0, 3.0)).startswith("ok, noisy")
    # others on the load core, which had room (30% load generator + 40%): harmless
    assert status((2.0, 40.0)) == "ok"
    # ... unless it was full: the load generator waited
    assert status((2.0, 65.0)).startswith("ok, noisy")
    assert status((15.0,)).startswith("ok, noisy")  # shared pinning: one figure


def test_a_failed_server_has_no_figures() -> None:
    summaries = [summary("dartle", 90000, 0.1, failure="socket errors: read 5"),
                 summary("uvicorn", 10000, 0.2)]
    results = report.results_table(summaries)
    dartle_row = next(row for row in results.splitlines() if "| dartle |" in row)
    assert "FAILED" in dartle_row and "90,000" not in dartle_row
    assert "n/a (dartle FAILED)" in report.ratios_table(summaries)


def test_scenarios_are_picked_by_name_or_family() -> None:
    assert run.parse_args(["websocket", "h2", "plaintext"]).scenarios == [
        "websocket", "h2-1x100", "h2-16x10", "plaintext"]
    assert run.parse_args(["tfb"]).scenarios == [
        "tfb-db", "tfb-queries", "tfb-fortunes", "tfb-updates", "tfb-cached"]
    assert run.parse_args([]).scenarios == list(SCENARIOS)
    with pytest.raises(SystemExit):
        run.parse_args(["h3"])


def test_run_writes_results_markdown(tmp_path: Path) -> None:
    require_binary("wrk")
    results = tmp_path / "RESULTS.md"
    status = run.main(["plaintext", "--servers", "uvicorn", "--duration", "1", "--warmup", "0",
                       "--quiet-wait", "0", "--no-chart", "--results", str(results)])
    text = results.read_text()
    assert status == 0, text
    row = next(line for line in text.splitlines() if line.startswith("| plaintext | uvicorn |"))
    assert row.endswith(" ok |") or "ok, noisy" in row
    pin = next(line.split("==")[1] for line in benchenv.REQUIREMENTS.read_text().splitlines()
               if line.startswith("uvicorn"))
    assert f"- uvicorn: {pin}" in text  # from the bench venv, as pinned
    assert "--servers uvicorn" in text  # the exact command
    assert "## Failures" not in text
