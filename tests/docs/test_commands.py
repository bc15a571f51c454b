"""The commands, flags, variables and configuration files the docs name are real.

- every `--flag` on a `dartle run|config|check` command line (in any non-Python block or
  inline code span) is an option of that command;
- every `DARTLE_*` variable named is an option (or the suite's own switch);
- every ```toml block is a valid dartle configuration file;
- every option of `dartle run` is in docs/server.md, and every uvicorn flag in
  docs/migrating-from-uvicorn.md (with a dartle column naming real flags);
- the systemd units verify with `systemd-analyze verify`.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from dartle.cli import main as dartle_cli
from dartle.configsources import _TOOLING, FILE_KEY, OPTIONS, read_file, resolve
from tests.docs.markdown import PAGES, ROOT, Block, all_blocks, blocks
from tests.support.services import require_binary

_COMMAND = re.compile(r"\bdartle\s+(run|config|check)\b")
_INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_FLAG = re.compile(r"(?<![\w-])(--[a-z0-9][a-z0-9-]*)")
_VARIABLE = re.compile(r"\bDARTLE_([A-Z0-9_]+)\b")
# Named on purpose although no option: (name, why).
_NOT_OPTIONS = {
    "WORKER": "operations.md shows the warning a misspelt variable gets",
    "HYPOTHESIS_SCALE": "a switch of the robustness suite",
}


def _options(command: str) -> set[str]:
    cmd = dartle_cli.commands[command]
    names = {"--help"}
    for param in cmd.params:
        if isinstance(param, click.Option):
            names.update(param.opts)
            names.update(param.secondary_opts)
    return names


def _command_lines() -> list[tuple[str, str]]:
    """(where, line) for every dartle command line in code blocks and inline code."""
    found: list[tuple[str, str]] = []
    for block in all_blocks():
        if block.lang in {"python", "py"}:
            continue
        text = re.sub(r"\\\n\s*", " ", block.code)  # shell line continuations
        found.extend((block.label, line) for line in text.splitlines())
    for page in PAGES:
        prose = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
        found.extend((str(page.relative_to(ROOT)), span) for span in _INLINE.findall(prose))
    return [(where, line) for where, line in found if _COMMAND.search(line)]


def _unknown_flags(line: str) -> list[str]:
    """`dartle COMMAND: --flag` for each flag on `line` its dartle command does not have."""
    starts = list(_COMMAND.finditer(line))
    unknown = []
    for i, match in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(line)
        args = line[match.end() : end].split(" #", 1)[0]  # a shell comment ends the command
        known = _options(match[1])
        unknown += [f"dartle {match[1]}: {flag}" for flag in _FLAG.findall(args) if flag not in known]
    return unknown


def test_unknown_flags_are_found() -> None:
    line = "DARTLE_X=1 dartle run a:app --nope --port=1 && dartle check a:app --path / --workers 2  # --ok"
    assert _unknown_flags(line) == ["dartle run: --nope", "dartle check: --workers"]


def test_flags_on_dartle_command_lines_exist() -> None:
    lines = _command_lines()
    assert len(lines) >= 40
    problems = [f"{where}: {bad} in: {line.strip()}" for where, line in lines for bad in _unknown_flags(line)]
    assert not problems, "\n".join(problems)


def test_dartle_variables_named_are_options() -> None:
    problems = []
    for page in PAGES:
        for name in set(_VARIABLE.findall(page.read_text(encoding="utf-8"))):
            option = name.lower()
            if name in _NOT_OPTIONS or option in {FILE_KEY, "app"} or option.startswith(_TOOLING):
                continue
            if option not in OPTIONS:
                problems.append(f"{page.relative_to(ROOT)}: DARTLE_{name} is not an option")
    assert not problems, "\n".join(problems)


TOML = [block for block in all_blocks() if block.lang == "toml"]


@pytest.mark.parametrize("block", TOML, ids=[block.label for block in TOML])
def test_toml_sample_is_a_valid_configuration(block: Block, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(block.code)
    resolved = resolve({}, config_file=str(path), env={}, cwd=str(tmp_path))  # raises if invalid
    table = read_file(str(path), pyproject=False)
    assert table, f"{block.label}: no dartle options in this block"
    for key in table:
        assert resolved.sources[key.replace("-", "_")].kind == "file", key


def _documented(page: Path, flag: str) -> bool:
    return re.search("`" + re.escape(flag) + r"[` =]", page.read_text(encoding="utf-8")) is not None


def test_every_run_option_is_in_the_server_guide() -> None:
    page = ROOT / "docs" / "server.md"
    missing = sorted(flag for flag in _options("run") - {"--help"} if not _documented(page, flag))
    assert not missing, f"docs/server.md does not document: {', '.join(missing)}"


def _uvicorn_flags() -> set[str]:
    pytest.importorskip("uvicorn")
    help_text = subprocess.run(
        [sys.executable, "-m", "uvicorn", "--help"], capture_output=True, text=True, check=True
    ).stdout
    return {flag for line in help_text.splitlines() if line.startswith("  -") for flag in _FLAG.findall(line)}


def test_uvicorn_guide_covers_every_uvicorn_flag() -> None:
    page = ROOT / "docs" / "migrating-from-uvicorn.md"
    flags = _uvicorn_flags() - {"--help"}
    assert len(flags) > 50
    missing = sorted(flag for flag in flags if not _documented(page, flag))
    assert not missing, f"docs/migrating-from-uvicorn.md does not cover: {', '.join(missing)}"


def test_uvicorn_guide_dartle_column_names_real_flags() -> None:
    page = ROOT / "docs" / "migrating-from-uvicorn.md"
    known = _options("run")
    lines = page.read_text(encoding="utf-8").splitlines()
    rows = [line.split("|") for line in lines if line.startswith("| `--")]
    assert len(rows) > 30
    problems = [f"{row[1].strip()}: dartle has no {flag}" for row in rows for flag in _FLAG.findall(row[2])
                if flag not in known and flag != "--version"]
    assert not problems, "\n".join(problems)


_UNIT_NAME = re.compile(r"^# /etc/systemd/system/(\S+\.(?:service|socket))$", re.M)


def _unit_pages() -> list[Path]:
    return [page for page in PAGES if any(_UNIT_NAME.search(b.code) for b in blocks(page) if b.lang == "ini")]


@pytest.mark.parametrize("page", _unit_pages(), ids=lambda page: page.name)
def test_systemd_units_verify(page: Path, tmp_path: Path) -> None:
    analyze = require_binary("systemd-analyze")
    dartle = Path(sys.executable).with_name("dartle")
    units = []
    for block in blocks(page):
        match = _UNIT_NAME.search(block.code) if block.lang == "ini" else None
        if match is None:
            continue
        # The unit as written, with the paths of a machine that has /srv/myapp.
        text = block.code.replace("/srv/myapp/.venv/bin/dartle", str(dartle))
        text = text.replace("WorkingDirectory=/srv/myapp", f"WorkingDirectory={tmp_path}")
        (tmp_path / match[1]).write_text(text)
        units.append(match[1])
    result = subprocess.run([analyze, "verify", *units], cwd=tmp_path, capture_output=True, text=True)
    report = [line for line in (result.stdout + result.stderr).splitlines() if any(u in line for u in units)]
    assert result.returncode == 0 and not report, "\n".join(report) or result.stderr
