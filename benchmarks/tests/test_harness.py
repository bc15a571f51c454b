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

from benchmarks import benchenv, cpu, load, report, run, servers
from benchmarks.load import SCENARIOS
from benchmarks.report import Measurement
from benchmarks.servers import ServerSpec
from tests.support.servers import run_server
from tests.support.services import require_binary

HELLO = "benchmarks.apps.hello:app"
DEV_PYTHON = Path(sys.executable)  # the dev venv has uvicorn too; no bench venv needed


@pytest.fixture(scope="module")
def wrk() -> str:
    return require_binary("wrk")


def test_hello_app_answers_plain_text() -> None:
    with run_server(HELLO, kind="uvicorn") as server:
        status, body = servers.http_get(server.port)
    assert (status, body) == (200, b"Hello, world!")


def test_plaintext_run_is_parsed(wrk: str) -> None:
    with run_server(HELLO, "--no-access-log", kind="uvicorn") as server:
        result = load.run_wrk(wrk, SCENARIOS["plaintext"], server.port, 1, None)
    assert result.problems == [], result.output
    assert result.requests > 0
    assert result.requests_per_second > 0
    assert result.seconds > 0
    assert {"mean", "50%", "99%"} <= result.latency_us.keys()
    assert result.latency_us["50%"] <= result.latency_us["99%"]
    assert result.cpu_seconds > 0


def test_pipelined_run_counts_every_response(wrk: str) -> None:
    with run_server(HELLO, "--no-access-log", kind="uvicorn") as server:
        result = load.run_wrk(wrk, SCENARIOS["pipelined"], server.port, 1, None)
    assert result.problems == [], result.output
    assert result.requests > 0
    # wrk's percentiles are not to be trusted when pipelining; its mean is kept
    assert list(result.latency_us) == ["mean"]
    assert result.latency_us["mean"] > 0


def test_error_responses_are_a_failure(wrk: str) -> None:
    with run_server("benchmarks.tests.apps:error", "--no-access-log", kind="uvicorn") as server:
        result = load.run_wrk(wrk, SCENARIOS["plaintext"], server.port, 1, None)
    assert result.non_2xx_3xx > 0
    assert any("not 2xx/3xx" in problem for problem in result.problems)


def test_a_server_that_never_answers_is_a_failure(wrk: str) -> None:
    with run_server("benchmarks.tests.apps:silent", "--no-access-log", kind="uvicorn") as server:
        result = load.run_wrk(wrk, SCENARIOS["plaintext"], server.port, 1, None)
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
    result = load.parse_wrk(output)
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
    result = load.parse_wrk(output)
    assert result.latency_us == {"mean": 11040.0, "50%": 29470.0}
    assert result.problems == []


def test_a_slow_server_is_not_a_stalled_one() -> None:
    # hypercorn on a busy machine: few responses, but as many as its latency allows
    slow = load.WrkResult(requests=8483, seconds=10.06, latency_us={"mean": 88430.0})
    assert load.stalled(slow, SCENARIOS["plaintext"]) is None
    pipelined = load.WrkResult(requests=150070, seconds=10.0, latency_us={"mean": 61800.0})
    assert load.stalled(pipelined, SCENARIOS["pipelined"]) is None


def test_answers_that_stop_coming_are_stalled_connections() -> None:
    # each connection answered once (1 ms), then nothing for the rest of 10 s
    result = load.WrkResult(requests=64, seconds=10.0, latency_us={"mean": 1000.0})
    problem = load.stalled(result, SCENARIOS["plaintext"])
    assert problem is not None and "stalled" in problem


def test_parse_wrk_without_a_count_is_a_problem() -> None:
    assert load.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n").problems


def _measure(spec: ServerSpec, duration: str = "1") -> Measurement:
    args = run.parse_args(["plaintext", "--duration", duration, "--warmup", "0"])
    wrk = require_binary("wrk")
    return run.measure(spec, SCENARIOS["plaintext"], args, DEV_PYTHON, wrk, None)


def test_measure_counts_server_cpu_per_request() -> None:
    result = _measure(servers.SERVERS["uvicorn"])
    assert result.failure is None, (result.failure, result.log_tail)
    assert result.wrk is not None and result.wrk.requests > 0
    assert result.server_cpu_seconds > 0
    assert result.cpu_us_per_request > 0


def test_the_canned_floor_serves_the_hello_scenarios() -> None:
    spec = servers.SERVERS["canned"]
    assert spec.serves("plaintext") and spec.serves("pipelined")
    result = _measure(spec)
    assert result.failure is None, (result.failure, result.log_tail)


def test_a_server_that_cannot_start_is_a_failure() -> None:
    spec = ServerSpec("broken", "broken", ("-c", "import sys; print('no app'); sys.exit(3)"))
    result = _measure(spec)
    assert result.wrk is None
    assert result.failure is not None and "status 3" in result.failure
    assert "no app" in result.log_tail


def test_a_server_with_the_wrong_answer_is_a_failure() -> None:
    spec = ServerSpec("wrong", "uvicorn", (
        "-m", "uvicorn", "benchmarks.tests.apps:error", "--host", "{host}", "--port", "{port}",
    ))
    result = _measure(spec)
    assert result.wrk is None
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


def _summary(server: str, rps: float, cpu_seconds: float, failure: str | None = None,
             wrk_cpu_seconds: float = 0.5) -> report.Summary:
    result = load.WrkResult(requests=int(rps), seconds=1.0, requests_per_second=rps,
                            cpu_seconds=wrk_cpu_seconds)
    run_ = Measurement("plaintext", server, result, cpu.CpuTimes(cpu_seconds, 0.0), failure)
    return report.Summary("plaintext", server, [run_])


def test_ratios_compare_dartle_with_each_anchor() -> None:
    summaries = [_summary("dartle", 20000, 0.2), _summary("uvicorn", 10000, 0.2)]
    table = report.ratios_table(summaries)
    # dartle: 10 µs/request, uvicorn 20 µs/request; twice the requests/s
    assert "| plaintext | uvicorn | 0.50 | 2.00 |" in table


def test_a_saturated_load_generator_is_flagged() -> None:
    results = report.results_table([_summary("canned", 100000, 0.9, wrk_cpu_seconds=0.97)])
    assert "wrk-bound" in results


def test_a_failed_server_has_no_figures() -> None:
    summaries = [_summary("dartle", 90000, 0.1, failure="socket errors: read 5"),
                 _summary("uvicorn", 10000, 0.2)]
    results = report.results_table(summaries)
    dartle_row = next(row for row in results.splitlines() if "| dartle |" in row)
    assert "FAILED" in dartle_row and "90,000" not in dartle_row
    assert "n/a (dartle FAILED)" in report.ratios_table(summaries)


def test_run_writes_results_markdown(tmp_path: Path) -> None:
    require_binary("wrk")
    results = tmp_path / "RESULTS.md"
    status = run.main(["plaintext", "--servers", "uvicorn", "--duration", "1", "--warmup", "0",
                       "--quiet-wait", "0", "--results", str(results)])
    text = results.read_text()
    assert status == 0, text
    row = next(line for line in text.splitlines() if line.startswith("| plaintext | uvicorn |"))
    assert row.endswith(" ok |") or "ok, noisy" in row
    pin = next(line.split("==")[1] for line in benchenv.REQUIREMENTS.read_text().splitlines()
               if line.startswith("uvicorn"))
    assert f"- uvicorn: {pin}" in text  # from the bench venv, as pinned
    assert "--servers uvicorn" in text  # the exact command
    assert "## Failures" not in text
