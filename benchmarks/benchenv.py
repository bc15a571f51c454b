"""The benchmark's own world: its venv (benchmarks/.venv), wrk and h2load, facts about the machine.

The anchors run from a separate venv so that a benchmark never upgrades or downgrades
anything in the development venv, and so that their versions are pinned in one file
(benchmarks/requirements.txt). dartle is installed into it from the repository in
editable mode, so the bench always measures the working tree.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
VENV = BENCH_DIR / ".venv"
REQUIREMENTS = BENCH_DIR / "requirements.txt"
OUT = BENCH_DIR / "out"  # server logs, profiles (git-ignored)
_STAMP = VENV / ".installed"


def venv_python() -> Path:
    return VENV / "bin" / "python"


def _wanted_stamp() -> str:
    """What the venv was built from: a change to either file rebuilds it."""
    digest = hashlib.sha256()
    for path in (REQUIREMENTS, ROOT / "pyproject.toml"):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def venv_ready() -> bool:
    """Whether benchmarks/.venv is built from the current requirements.txt and pyproject.toml."""
    return _STAMP.exists() and _STAMP.read_text() == _wanted_stamp() and venv_python().exists()


def ensure_venv(log: bool = True) -> Path:
    """Create or refresh benchmarks/.venv when requirements.txt or pyproject.toml changed."""
    if venv_ready():
        return venv_python()
    wanted = _wanted_stamp()
    if log:
        print(f"building {VENV.relative_to(ROOT)} from {REQUIREMENTS.relative_to(ROOT)} ...",
              flush=True)
    if not venv_python().exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(venv_python()), "-m", "pip", "install", "-qq", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
    subprocess.run([*pip, "-e", str(ROOT)], check=True)
    _STAMP.write_text(wanted)
    return venv_python()


def distribution_versions(names: list[str]) -> dict[str, str]:
    """Installed versions in the bench venv ("missing" when not installed)."""
    code = (
        "import importlib.metadata as m, sys\n"
        "for name in sys.argv[1:]:\n"
        "    try: print(name, m.version(name))\n"
        "    except m.PackageNotFoundError: print(name, 'missing')\n"
    )
    out = subprocess.run([str(venv_python()), "-c", code, *names],
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


# binary -> (Debian package, where else to get it)
TOOLS = {
    "wrk": ("wrk", "https://github.com/wg/wrk, build with `make`, put `wrk` on PATH"),
    "h2load": ("nghttp2-client", "https://nghttp2.org, `h2load` on PATH"),
}


def find_tool(name: str, install: bool = True) -> str | None:
    """Path of a load generator; installs its Debian package when running as root."""
    found = shutil.which(name)
    if found or not install:
        return found
    install_debian_package(TOOLS[name][0], f"{name} is missing")
    return shutil.which(name)


def install_debian_package(package: str, why: str) -> bool:
    """apt-get install `package` when running as root on Debian; False when it cannot."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return False
    print(f"{why}; installing the Debian package {package} (running as root) ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, env=env)
    return True


def tool_help(name: str) -> str:
    package, elsewhere = TOOLS[name]
    return (f"{name} is not installed. On Debian/Ubuntu: `sudo apt-get update && sudo apt-get"
            f" install -y {package}` (other systems: {elsewhere}).")


def ensure_wrk() -> str:
    """Path of wrk, or exit explaining how to install it."""
    found = find_tool("wrk")
    if found is None:
        raise SystemExit(tool_help("wrk"))
    return found


def wrk_version(wrk: str) -> str:
    # `wrk -v` prints its version then the usage, and exits with status 1.
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout
    return out.splitlines()[0].split(" Copyright")[0] if out else "unknown"


def h2load_version(h2load: str) -> str:
    out = subprocess.run([h2load, "--version"], capture_output=True, text=True).stdout
    return out.strip() or "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_revision() -> str:
    """Short commit of the working tree, marked when it has uncommitted changes."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=ROOT).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + (" + uncommitted changes" if dirty else "")


def machine_facts() -> dict[str, str]:
    load1, load5, _ = os.getloadavg()
    return {
        "cpus (nproc)": str(len(os.sched_getaffinity(0))),
        "cpu model": cpu_model(),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load average at start (1 min, 5 min)": f"{load1:.2f}, {load5:.2f}",
    }


@contextlib.contextmanager
def exclusive() -> Iterator[None]:
    """Hold the benchmark lock: two benchmarks on the same two cores spoil each other.

    Any script that loads the cores (run.py, profile_server.py, ...) should take it.
    """
    OUT.mkdir(exist_ok=True)
    with open(OUT / "bench.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            print(f"another benchmark holds {OUT / 'bench.lock'} ({lock.read().strip()});"
                  " waiting for it to finish ...", flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}: {' '.join(sys.argv)}")
        lock.flush()
        yield
