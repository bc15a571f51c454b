"""Schemathesis against the running typed app: requests generated from /openapi.json
(valid and invalid), every answer checked against the document (status codes, content
types, response schemas) and for server errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers import run_server
from tests.support.services import services_required

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def _schemathesis() -> str:
    found = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    if not Path(found).exists():
        reason = "schemathesis is not installed (pip install schemathesis)"
        if services_required():
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest.mark.parametrize("kind", ["uvicorn", "dartle"])
def test_schemathesis_finds_no_disagreement(kind: str) -> None:
    tool = _schemathesis()
    # No access log: nobody reads the server's output while thousands of requests run.
    with run_server("tests.web.apps.typed_api:app", "--no-access-log", kind=kind) as server:
        done = subprocess.run(
            [
                tool,
                "run",
                server.url + "/openapi.json",
                "--checks",
                CHECKS,
                "--phases",
                "examples,coverage,fuzzing",
                "--max-time",
                "25",
                "--workers",
                "1",
                "--seed",
                "1",
                # Returns a value its own model rejects on purpose (a 500 test).
                "--exclude-path",
                "/typed/broken",
                "--request-timeout",
                "10",
            ],
            capture_output=True,
            text=True,
            timeout=240,
        )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
