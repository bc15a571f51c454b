"""Autobahn|Testsuite conformance: `wstest -m fuzzingclient` against the dartle server.

wstest (PyPI autobahntestsuite) is Python 2 only. The first run installs it into `.wstest/`
in the repository root (git-ignored) with the shared installer; without a Python 2.7 the
tests skip, or fail when DARTLE_REQUIRE_SERVICES=1 (CI). Reports land in
`reports/servers/<group>/` (git-ignored): index.json, read here case by case, and an HTML
page per case. Every case must end OK, NON-STRICT or INFORMATIONAL, its closing behaviour
too. The performance group 9.* is left out.

The compression groups 12.* and 13.* send 1000 messages per case through wstest's pure
Python client, up to 128 KiB each: all 216 cases take about 16 minutes on a busy 2-core
machine (wstest is the bottleneck, not the server). By default a quick selection runs
(about a minute): every negotiation variant of 12.* and 13.*, with messages of 16 B to
8 KiB, whole and fragmented. With DARTLE_AUTOBAHN_FULL=1 all of 12.* and 13.* run:
.ci/run does that as a step of its own after `make test`, so the suite stays short.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import ROOT, run_server
from tests.support.services import services_required

# shared/ lies beside the repository (in CI: beside the fresh clone)
_INSTALLERS = (ROOT.parent / "shared" / "tools" / "install-wstest", Path("/work/shared/tools/install-wstest"))
INSTALLER = Path(
    os.environ.get("DARTLE_WSTEST_INSTALLER", "")
    or next((str(p) for p in _INSTALLERS if p.exists()), str(_INSTALLERS[0]))
)
WSTEST_DIR = ROOT / ".wstest"
REPORTS = ROOT / "reports" / "servers"
PASSING = frozenset(("OK", "NON-STRICT", "INFORMATIONAL"))
FULL = os.environ.get("DARTLE_AUTOBAHN_FULL", "") not in ("", "0")
# 12.N.* / 13.N.*: N is the permessage-deflate offer; the last number picks size and
# fragmentation (1-6: 16 B to 8 KiB whole, 11: 8 KiB in 256-byte fragments)
_QUICK = [f"{g}.{n}.{c}" for g, offers in ((12, 5), (13, 7)) for n in range(1, offers + 1)
          for c in (1, 2, 3, 4, 5, 6, 11)]
GROUPS = {
    "core": ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*"],
    "compression": ["12.*", "13.*"] if FULL else _QUICK,
}
RUN_TIMEOUT = {"core": 600, "compression": 3600}


def _unavailable(reason: str) -> None:
    if services_required():
        pytest.fail(f"{reason} (and DARTLE_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def wstest() -> str:
    """The wstest executable, installed into .wstest/ on first use."""
    path = WSTEST_DIR / "bin" / "wstest"
    if path.exists():
        return str(path)
    if not INSTALLER.exists():
        _unavailable(f"the wstest installer {INSTALLER} is missing")
    result = subprocess.run(
        [str(INSTALLER), str(WSTEST_DIR)], capture_output=True, text=True, timeout=900, cwd=ROOT
    )
    if result.returncode != 0:
        problem = result.stderr.strip().splitlines()[-1:] or ["no output"]
        if "Python 2.7" in result.stderr:
            _unavailable(f"wstest needs Python 2.7: {problem[0]}")
        pytest.fail(f"installing wstest failed:\n{result.stderr[-2000:]}")
    return result.stdout.strip().splitlines()[-1]


def _case_key(case: str) -> list[int]:
    return [int(part) for part in case.split(".")]


def _summary(group: str, results: dict[str, Any], seconds: float) -> str:
    counts = Counter(f"{r['behavior']}/{r['behaviorClose']}" for r in results.values())
    by_group: Counter[str] = Counter()
    for case, result in results.items():
        by_group[case.split(".")[0]] += result["duration"]
    cases = " ".join(GROUPS[group]) if len(GROUPS[group]) < 12 else "quick selection of 12.* 13.*"
    lines = [
        f"Autobahn fuzzingclient vs dartle, {group} ({cases}): {len(results)} cases in {seconds:.0f} s",
        "  outcomes (behavior/close): " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())),
        "  time per group: " + ", ".join(f"{g}.*: {ms / 1000:.1f} s" for g, ms in sorted(
            by_group.items(), key=lambda item: int(item[0]))),
        f"  reports: {REPORTS / group}/index.json",
    ]
    non_strict = sorted((c for c, r in results.items() if r["behavior"] == "NON-STRICT"), key=_case_key)
    if non_strict:
        lines.append("  NON-STRICT: " + ", ".join(non_strict))
    return "\n".join(lines)


@pytest.mark.timeout(3900)
@pytest.mark.parametrize("group", list(GROUPS))
def test_autobahn_fuzzingclient(
    wstest: str, group: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outdir = REPORTS / group
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    with run_server("tests.apps.ws_echo:app", "--no-access-log") as server:
        spec = {
            "outdir": str(outdir),
            "servers": [{"agent": "dartle", "url": server.url.replace("http://", "ws://")}],
            "cases": GROUPS[group],
            "exclude-cases": ["9.*"],
            "exclude-agent-cases": {},
        }
        (tmp_path / "fuzzingclient.json").write_text(json.dumps(spec))
        started = time.monotonic()
        with open(outdir / "wstest.log", "w") as log:
            run = subprocess.run(
                [wstest, "-m", "fuzzingclient", "-s", "fuzzingclient.json"],
                cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT[group],
            )
        seconds = time.monotonic() - started
        server_log = server.read_log().decode(errors="replace")
    assert run.returncode == 0, (outdir / "wstest.log").read_text()[-3000:]
    results: dict[str, Any] = json.loads((outdir / "index.json").read_text())["dartle"]
    assert results, "wstest ran no case"
    with capsys.disabled():
        print("\n" + _summary(group, results, seconds))
    failed = {
        case: f"{r['behavior']}/{r['behaviorClose']} ({r['reportfile']})"
        for case, r in sorted(results.items(), key=lambda item: _case_key(item[0]))
        if r["behavior"] not in PASSING or r["behaviorClose"] not in PASSING
    }
    assert failed == {}, f"Autobahn cases failed; reports in {outdir}"
    assert "Traceback" not in server_log, server_log[-3000:]
