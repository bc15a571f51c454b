"""Coverage-guided fuzz target for dartle's HTTP/1.1 request path (atheris, libFuzzer).

Each input is a request stream plus where to cut it into reads (h1harness.decode_input).
It goes through the real H1Connection, httptools, Cycle and Runner in-process, and the
oracle in tests/robustness/h1harness.py checks the outcome against a strict reading of
RFC 9112: any violation is raised, and libFuzzer saves the input as a crash file.

    .venv/bin/python fuzz/http1_request.py -seeds fuzz/corpus     # write the seed corpus
    .venv/bin/python fuzz/http1_request.py fuzz/corpus -dict=fuzz/http.dict \\
        -max_len=4096 -timeout=10 -rss_limit_mb=2048              # fuzz until stopped
    .venv/bin/python fuzz/http1_request.py crash-<sha1>          # replay one input

Everything after the script name is passed to libFuzzer (-runs=N, -max_total_time=S,
-jobs=N, -workers=N ...). See docs/robustness.md for what is checked and how to triage.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

import atheris  # noqa: E402 - after the path set-up

with atheris.instrument_imports(include=["dartle", "tests.robustness"]):
    from tests.robustness.h1harness import check, decode_input, encode_input


def test_one_input(data: bytes) -> None:
    stream, cuts = decode_input(data)
    check(stream, cuts)


def write_seeds(directory: Path) -> int:
    """The compliance table's requests and a few pipelines, as fuzz inputs."""
    from tests.robustness.test_compliance import CASES

    directory.mkdir(parents=True, exist_ok=True)
    seeds = [case.wire.replace(b"RID", b"s1") for case in CASES]
    valid = [case.wire.replace(b"RID", b"s2") for case in CASES if case.outcome == "serve"]
    seeds += [valid[i] + valid[(i + 3) % len(valid)] for i in range(len(valid))]
    for index, stream in enumerate(seeds):
        cuts = [len(stream) // 3, len(stream) // 2] if index % 2 else []
        (directory / f"seed-{index:03d}").write_bytes(encode_input(stream, cuts))
    return len(seeds)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "-seeds":
        print(f"wrote {write_seeds(Path(sys.argv[2]))} seeds to {sys.argv[2]}")
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
