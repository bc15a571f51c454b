"""The interop tests' own venv: tests/interop/.venv, built from tests/interop/requirements.txt.

Flask, Django, FastAPI, Quart, Litestar, hypercorn and granian are never dartle
dependencies, and some pin versions (of Starlette, for one) that the development venv
must not be forced into. So the servers under test run from a venv of their own, with
dartle installed into it from the working tree (editable). The venv is rebuilt when
requirements.txt or pyproject.toml changes; a lock keeps two test runs from building it
at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VENV = HERE / ".venv"
REQUIREMENTS = HERE / "requirements.txt"
_STAMP = VENV / ".installed"
_LOCK = VENV / ".build.lock"  # inside the venv directory, so git ignores it too


def venv_python() -> Path:
    return VENV / "bin" / "python"


def _wanted_stamp() -> str:
    digest = hashlib.sha256()
    for path in (REQUIREMENTS, ROOT / "pyproject.toml"):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _fresh() -> bool:
    return _STAMP.exists() and _STAMP.read_text() == _wanted_stamp() and venv_python().exists()


def ensure_venv() -> Path:
    """The interop venv's python, building or refreshing the venv first when needed.

    Raises subprocess.CalledProcessError when pip fails (no network, a yanked pin...).
    """
    if _fresh():
        return venv_python()
    VENV.mkdir(exist_ok=True)
    with open(_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _fresh():  # another run built it while we waited
            return venv_python()
        print(f"\nbuilding {VENV.relative_to(ROOT)} from {REQUIREMENTS.relative_to(ROOT)} ...",
              file=sys.stderr, flush=True)
        if not venv_python().exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip = [str(venv_python()), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
        subprocess.run([*pip, "-e", str(ROOT)], check=True)
        _STAMP.write_text(_wanted_stamp())
    return venv_python()


if __name__ == "__main__":
    print(ensure_venv())
