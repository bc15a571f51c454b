"""The documentation site builds with `mkdocs build --strict`: no warning, no broken link.

mkdocs.yml's `validation:` settings make a link to a missing page or heading anchor, and
a page left out of the nav, warnings; --strict makes warnings fatal. README.md is not
part of the site, so its relative links are checked here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.markdown import ROOT
from tests.support.services import services_required


def _require_mkdocs() -> None:
    try:
        import material  # noqa: F401
        import mkdocs  # noqa: F401
    except ImportError:
        message = "mkdocs and mkdocs-material are not installed (the docs extra, which make test installs)"
        if services_required():
            pytest.fail(message + " and DARTLE_REQUIRE_SERVICES=1")
        pytest.skip(message)


def test_site_builds_strictly(tmp_path: Path) -> None:
    _require_mkdocs()
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output, output
    pages = sorted(path.stem for path in (ROOT / "docs").glob("*.md"))
    for page in pages:
        built = site / "index.html" if page == "index" else site / page / "index.html"
        assert built.is_file(), f"docs/{page}.md was not built"
    assert "getting-started/" in (site / "index.html").read_text(encoding="utf-8")


def test_readme_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", readme)
    local = [link for link in links if "://" not in link and not link.startswith("#")]
    assert len(local) >= 5
    missing = [link for link in local if not (ROOT / link.split("#", 1)[0]).exists()]
    assert not missing, f"README.md links to missing files: {missing}"
