"""The fenced code blocks of README.md and docs/*.md, with their docs-test markers.

The convention (docs/contributing.md explains it to authors): the ```python blocks of a
page run in order, each in a fresh namespace, unless the line before it is a marker:

- `<!-- docs-test: continue -->` runs the block in the namespace of the page's previous
  block, for a program built over several blocks with prose between;
- `<!-- docs-test: file main.py -->` makes the block (and the `continue` blocks after it)
  the module `main`, so that later blocks of the page can `from main import app`;
- `<!-- docs-test: skip REASON -->` leaves a block out; the reason is required.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)[^\n]*$")
_MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<verb>[\w-]+)\s*(?P<reason>.*?)\s*-->\s*$")
VERBS = {"continue", "file", "skip"}


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, its code, and its marker if any."""

    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    marker: str | None = None
    reason: str = ""

    @property
    def label(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """Every fenced block of `page`, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j])
            j += 1
        marker, reason = _marker_before(lines, i)
        found.append(Block(page, i + 1, opening["lang"].lower(), "\n".join(body) + "\n", marker, reason))
        i = j + 1
    return found


def _marker_before(lines: list[str], index: int) -> tuple[str | None, str]:
    k = index - 1
    while k >= 0 and not lines[k].strip():
        k -= 1
    match = _MARKER.match(lines[k]) if k >= 0 else None
    if match is None:
        return None, ""
    return match["verb"], match["reason"]


def all_blocks() -> list[Block]:
    return [block for page in PAGES for block in blocks(page)]


def python_pages() -> list[Path]:
    """The pages that have python blocks to run."""
    return [page for page in PAGES if any(b.lang in {"python", "py"} for b in blocks(page))]
