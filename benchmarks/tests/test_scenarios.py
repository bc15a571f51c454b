"""The scenario types beyond plaintext: request bodies, streaming, HTTP/2, WebSocket, idle
connections, workers, framework stacks, and how each reports a wrong or unsupported server.

Real servers and real load generators, briefly; no speed is asserted. Tests that need
the anchors only the bench venv has (FastAPI, hypercorn, matplotlib) run when
benchmarks/.venv is built (`make bench` builds it) and skip otherwise.

Run: .venv/bin/pytest benchmarks/tests -q
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from benchmarks import benchenv, h2load, idle, load, probes, report, run, servers, wrk, wsload
from benchmarks.apps import stream
from benchmarks.cpu import CpuTimes
from benchmarks.load import LoadResult, NoWindow
from benchmarks.report import Measurement
from benchmarks.scenarios import SCENARIOS, Stack
from tests.support.servers import run_server
from tests.support.services import require_binary

DEV_PYTHON = Path(sys.executable)


@pytest.fixture(scope="module")
def bench_python() -> Path:
    if not benchenv.venv_ready():
        pytest.skip("benchmarks/.venv is not built from the current requirements (make bench)")
    return benchenv.venv_python()


def measure(stack: Stack, scenario: str, python: Path = DEV_PYTHON,
            pair: tuple[str, str] | None = None) -> Measurement:
    args = run.parse_args([scenario, "--duration", "1", "--warmup", "0"])
    h2 = require_binary("h2load") if SCENARIOS[scenario].load == "h2load" else None
    tools = run.Tools(python, require_binary("wrk"), h2)
    return run.measure(stack, SCENARIOS[scenario], args, tools, pair)


def assert_ok(result: Measurement) -> None:
    assert result.failure is None, (result.failure, result.log_tail)
    assert result.unsupported is None
    assert result.load is not None and result.load.requests > 0


def test_wrk_sends_the_scenarios_request_body() -> None:
    # strict_echo answers 400 unless it got exactly the 10 KiB: no error means wrk sent it
    with run_server("benchmarks.tests.apps:strict_echo", "--no-access-log", kind="uvicorn") as s:
        result = wrk.run(require_binary("wrk"), SCENARIOS["post-echo"], s.port, 1, None)
    assert result.problems == [], result.output
    assert result.requests > 0


def test_post_echo_measures_a_server() -> None:
    assert_ok(measure(Stack("dartle", "dartle", "benchmarks.apps.echo:app"), "post-echo"))


def test_the_streaming_probe_reads_the_whole_chunked_body() -> None:
    with run_server("benchmarks.apps.stream:app", kind="dartle") as server:
        status, body = probes.http_request(server.port, SCENARIOS["streaming"].request)
    assert status == 200 and body == stream.BODY


def test_an_answer_wrong_for_the_scenario_is_a_failure() -> None:
    result = measure(Stack("uvicorn", "uvicorn", "benchmarks.apps.hello:app"), "post-echo")
    assert result.load is None
    assert result.failure is not None and "answered 200 b'Hello, world!'" in result.failure


def test_framework_stacks_in_the_dev_venv_give_the_expected_answers() -> None:
    # servers.started probes each stack: it raises ServerFailed on a wrong answer
    scenarios = ("framework-plaintext", "framework-json", "framework-typed")
    for scenario in map(SCENARIOS.__getitem__, scenarios):
        for stack in scenario.stacks:
            if "fastapi" in stack.app:
                continue  # not in the dev venv: test_fastapi_stacks_give_the_expected_answers
            with servers.started(servers.SERVERS[stack.server], DEV_PYTHON, stack, scenario,
                                 None) as server:
                server.check()


def test_the_typed_endpoint_accepts_every_request_of_the_load() -> None:
    # a body the endpoint rejects would be 422s, which fail the run
    assert_ok(measure(SCENARIOS["framework-typed"].stack("dartle"), "framework-typed"))


def test_fastapi_stacks_give_the_expected_answers(bench_python: Path) -> None:
    for name in ("framework-plaintext", "framework-json", "framework-typed"):
        scenario = SCENARIOS[name]
        stack = scenario.stack("fastapi on uvicorn")
        with servers.started(servers.SERVERS["uvicorn"], bench_python, stack, scenario,
                             None) as server:
            server.check()


H2_SCENARIOS = ("h2-1x100", "h2-16x10")
DARTLE_HTTP2 = benchenv.ROOT / "src" / "dartle" / "server" / "http2.py"


def test_the_h2_scenarios_are_issue_4s_shapes() -> None:
    shapes = {name: (SCENARIOS[name].connections, SCENARIOS[name].streams)
              for name in H2_SCENARIOS}
    assert shapes == {"h2-1x100": (1, 100), "h2-16x10": (16, 10)}
    for name in H2_SCENARIOS:
        assert [stack.name for stack in SCENARIOS[name].stacks] == [
            "dartle", "hypercorn", "granian"]


def test_a_server_without_http2_is_not_supported_rather_than_failed() -> None:
    assert not servers.SERVERS["uvicorn"].supports("h2c")
    result = measure(Stack("uvicorn", "uvicorn", "benchmarks.apps.hello:app"), "h2-16x10")
    assert result.unsupported is not None and "h2c" in result.unsupported
    assert result.failure is None and result.load is None
    summaries = report.summarise([result, Measurement("h2-16x10", "granian", failure="boom")])
    assert "not supported: uvicorn does not serve h2c" in report.results_table(summaries)


def test_a_server_claiming_http2_that_speaks_only_http1_is_a_failure(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # uvicorn, told it serves h2c: the h2c probe (curl) must find out, and the row FAIL
    uvicorn = servers.SERVERS["uvicorn"]
    liar = dataclasses.replace(uvicorn, name="liar", modes={**uvicorn.modes, "h2c": ()})
    monkeypatch.setitem(servers.SERVERS, "liar", liar)
    result = measure(Stack("liar", "liar", "benchmarks.apps.hello:app"), "h2-1x100")
    assert result.unsupported is None and result.load is None
    assert result.failure is not None and "curl" in result.failure


def test_h2load_against_an_http1_only_server_is_a_failure() -> None:
    with run_server("benchmarks.apps.hello:app", "--no-access-log", kind="uvicorn") as server:
        result = h2load.run(require_binary("h2load"), SCENARIOS["h2-16x10"], server.port, 1,
                            None)
    assert result.problems


@pytest.mark.parametrize("scenario", H2_SCENARIOS)
def test_h2_measures_an_h2c_server(bench_python: Path, scenario: str) -> None:
    result = measure(SCENARIOS[scenario].stack("hypercorn"), scenario, bench_python)
    assert_ok(result)
    assert result.load is not None
    latency = result.load.latency_us  # percentiles from h2load's per-request log
    assert {"mean", "50%", "99%"} <= latency.keys()
    assert 0 < latency["50%"] <= latency["99%"]


def test_h2load_log_gives_the_latencies_of_successful_streams() -> None:
    log = "1700000000000000\t200\t1500\n1700000000000100\t-1\t90000\n" \
          "1700000000000200\t200\t500\n"
    assert h2load.parse_log(log) == [1500.0, 500.0]


def test_latency_percentiles_are_nearest_rank() -> None:
    summary = load.latency_summary([float(n) for n in range(100, 0, -1)])  # 1..100 µs
    assert summary == {"mean": 50.5, "50%": 50.0, "99%": 99.0}
    assert load.latency_summary([7.0]) == {"mean": 7.0, "50%": 7.0, "99%": 7.0}
    assert load.latency_summary([]) == {}


@pytest.mark.parametrize("scenario", H2_SCENARIOS)
def test_h2_measures_dartle(scenario: str) -> None:
    if not DARTLE_HTTP2.exists():
        pytest.skip("dartle's HTTP/2 (src/dartle/server/http2.py) is not there yet: "
                    "its h2 rows are FAILED")
    assert_ok(measure(SCENARIOS[scenario].stack("dartle"), scenario))


def test_h2load_output_is_parsed() -> None:
    output = textwrap.dedent("""\
        finished in 2.00s, 20000.00 req/s, 800.00KB/s
        requests: 40010 total, 40010 started, 40000 done, 39990 succeeded, 10 failed, 0 errored, 0 timeout
        status codes: 39990 2xx, 0 3xx, 0 4xx, 10 5xx
        traffic: 1.58MB (1656328) total, 366.21KB (375000) headers (space savings 90.00%)
                             min         max         mean         sd        +/- sd
        time for request:      174us      9.62ms      1.28ms      1.36ms    90.70%
        """)
    result = h2load.parse(output)
    assert (result.requests, result.seconds) == (39990, 2.0)
    assert result.latency_us == {"mean": 1280.0}
    assert result.problems == ["10 responses were not 2xx/3xx", "requests failed 10"]


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []

    def start(self) -> None:
        self.events.append("start")

    def stop(self) -> None:
        self.events.append("stop")


def test_websocket_load_counts_echoes_inside_the_window() -> None:
    scenario = SCENARIOS["websocket"]
    window = Recorder()
    with run_server("benchmarks.apps.ws_echo:app", kind="dartle") as server:
        result = wsload.measure(str(DEV_PYTHON), scenario, server.port, 1, 0.2, None, window)
    assert result.problems == [], result.output
    assert window.events == ["start", "stop"]
    assert result.requests > 0 and result.cpu_seconds > 0
    assert {"mean", "50%", "99%"} <= result.latency_us.keys()


def test_wrong_echoes_are_a_failure() -> None:
    with run_server("benchmarks.tests.apps:wrong_echo", kind="uvicorn") as server:
        result = wsload.measure(str(DEV_PYTHON), SCENARIOS["websocket"], server.port, 1, 0, None,
                                NoWindow())
    assert any("differed" in problem for problem in result.problems)


def test_websocket_deflate_compresses_and_checks_every_echo() -> None:
    scenario = SCENARIOS["websocket-deflate"]
    with run_server("benchmarks.apps.ws_echo:app", kind="dartle") as server:
        result = wsload.measure(str(DEV_PYTHON), scenario, server.port, 1, 0, None, NoWindow())
    assert result.problems == [], result.output
    assert result.requests > 0


def test_a_server_declining_deflate_fails_the_deflate_scenario() -> None:
    with run_server("benchmarks.apps.ws_echo:app", "--no-ws-per-message-deflate",
                    kind="dartle") as server:
        result = wsload.measure(str(DEV_PYTHON), SCENARIOS["websocket-deflate"], server.port, 1,
                                0, None, NoWindow())
    assert any("declined permessage-deflate" in problem for problem in result.problems)


def test_websocket_measures_uvicorn_with_its_sansio_backend() -> None:
    assert "websockets-sansio" in servers.SERVERS["uvicorn"].modes["websocket"]
    assert_ok(measure(SCENARIOS["websocket"].stack("uvicorn"), "websocket"))


def test_idle_connections_are_opened_held_and_counted() -> None:
    scenario = dataclasses.replace(SCENARIOS["idle"], connections=300)
    with run_server("benchmarks.apps.hello:app", kind="dartle") as server:
        result = idle.measure(str(DEV_PYTHON), scenario, server.proc.pid, server.port, None)
    assert result.problems == [], result.output
    assert result.opened == result.kept == 300
    assert result.rss_before > 0 and result.rss_after > 0


def test_a_server_dropping_idle_connections_is_a_failure() -> None:
    scenario = dataclasses.replace(SCENARIOS["idle"], connections=50)
    with run_server("benchmarks.tests.apps:closing", kind="uvicorn") as server:
        result = idle.measure(str(DEV_PYTHON), scenario, server.proc.pid, server.port, None)
    assert any("dropped 50 of 50" in problem for problem in result.problems), result.output


def test_memory_results_have_their_own_table_and_ratio() -> None:
    def held(stack: str, per_connection: int) -> Measurement:
        result = idle.IdleResult(10_000, 10_000, 10_000, 2**20, 2**20 + 10_000 * per_connection)
        return Measurement("idle", stack, idle=result)

    summaries = report.summarise([held("dartle", 4096), held("uvicorn", 8192)])
    assert "| idle | dartle | 10,000 | 1.0 MiB | 40.1 MiB | 4.0 |" in report.memory_table(summaries)
    assert report.results_table(summaries) == ""
    assert "| idle | dartle | uvicorn | 0.50 | - |" in report.ratios_table(summaries)


def test_two_workers_share_both_cores_and_are_counted_as_one_tree() -> None:
    pair, _ = run.pinning(False)
    result = measure(SCENARIOS["workers"].stack("dartle x2"), "workers", pair=pair)
    assert_ok(result)
    if pair is not None:  # one "others" figure for the two cores both use
        assert result.others_percent is not None and len(result.others_percent) == 1


def test_framework_ratios_compare_each_dartle_stack_with_each_anchor() -> None:
    def row(stack: str, cpu_seconds: float) -> Measurement:
        load = LoadResult(requests=1000, seconds=1.0, requests_per_second=1000.0)
        return Measurement("framework-typed", stack, load=load,
                           server_cpu=CpuTimes(cpu_seconds, 0.0))

    summaries = report.summarise([row("dartle", 0.1), row("dartle on uvicorn", 0.12),
                                  row("fastapi on uvicorn", 0.3)])
    table = report.ratios_table(summaries)
    assert "| framework-typed | dartle | fastapi on uvicorn | 0.33 |" in table
    assert "| framework-typed | dartle on uvicorn | fastapi on uvicorn | 0.40 |" in table


def test_the_chart_is_drawn(bench_python: Path, tmp_path: Path) -> None:
    summaries = report.summarise([
        Measurement("plaintext", "dartle", load=LoadResult(requests=10, seconds=1.0,
                    requests_per_second=10.0), server_cpu=CpuTimes(0.001, 0.0)),
        Measurement("plaintext", "uvicorn", failure="boom"),
        Measurement("h2-1x100", "uvicorn", unsupported="no h2c"),
    ])
    png = tmp_path / "chart.png"
    data = tmp_path / "chart.json"
    data.write_text(json.dumps(report.chart_data(summaries)))
    subprocess.run([str(bench_python), "-m", "benchmarks.chart", str(data), str(png)],
                   cwd=benchenv.ROOT, check=True)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
