"""A throwaway PostgreSQL for the TechEmpower apps, from the Debian binaries.

    with postgres.running() as url:   # postgresql://postgres@127.0.0.1:PORT/hello_world
        ...

    python -m examples.techempower.postgres     # start one, print its URL, stop on Ctrl-C

`initdb` in a temporary directory, the server on a free loopback port (its socket
file in the same directory), the hello_world database created and filled from
schema.sql with psql; on exit the server gets a fast shutdown by its PID and the
directory is removed. PostgreSQL refuses to run as root: as root, initdb and the
server run as the `postgres` system user the Debian package creates (else as `nobody`),
with no supplementary groups, and the temporary directory is handed to that user;
psql, a client, runs as us. Durability is off (fsync, synchronous commit): the data is
thrown away anyway.

Needs the Debian `postgresql` package (`apt-get install -y postgresql`); binaries are
looked up in /usr/lib/postgresql/*/bin, then on PATH.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = Path(__file__).with_name("schema.sql")
DATABASE = "hello_world"
READY = re.compile(rb"ready to accept connections")
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
# Who runs the server when we are root, first found first (see _server_account).
ACCOUNTS = ("postgres", "nobody")


class PostgresMissing(RuntimeError):
    """The PostgreSQL binaries (or, as root, the postgres user) are not there."""


def bin_dir() -> Path | None:
    """The directory with initdb, postgres and psql: the newest Debian version, else PATH."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                      key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0)
    for candidate in reversed(versions):
        if (candidate / "initdb").exists() and (candidate / "postgres").exists():
            return candidate
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class _Account:
    """The unprivileged account the server runs as when we are root (Popen's user/group)."""

    name: str
    uid: int
    gid: int

    def popen_args(self) -> dict[str, Any]:
        # extra_groups=[]: drop root's supplementary groups too.
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def _server_account(directory: Path) -> _Account | None:
    """As root: an account to run PostgreSQL as, owning `directory`; None when not root.

    PostgreSQL refuses to run as root. The `postgres` user the Debian package creates is
    preferred; without it, `nobody`. The data lives in `directory`, so that account
    needs nothing else of its own (no home, no shell).
    """
    if os.geteuid() != 0:
        return None
    for name in ACCOUNTS:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        os.chown(directory, entry.pw_uid, entry.pw_gid)
        account = _Account(name, entry.pw_uid, entry.pw_gid)
        probe = subprocess.run(["test", "-w", str(directory)], capture_output=True,
                               **account.popen_args())
        if probe.returncode != 0:  # installed but unusable here: an error, not a skip
            raise RuntimeError(
                f"PostgreSQL does not run as root, and the {name} user it would run as "
                f"cannot reach {directory} (is TMPDIR inside a private directory?)")
        return account
    raise PostgresMissing("PostgreSQL does not run as root, and there is neither a postgres "
                          "nor a nobody user to run it as")


class _Log:
    """Reads the server's output in a thread; `ready` is set when it accepts connections."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.lines: list[bytes] = []
        self.ready = False
        self.settled = threading.Event()  # ready, or the server exited
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line)
            if not self.ready and READY.search(line):
                self.ready = True
                self.settled.set()
        self.settled.set()

    def wait(self, timeout: float) -> bool:
        """True once ready; False if the server exited or the time ran out first."""
        self.settled.wait(timeout)
        return self.ready

    def text(self) -> str:
        return b"".join(self.lines[-30:]).decode(errors="replace")


def _run(cmd: list[str], account: _Account | None = None) -> None:
    extra = account.popen_args() if account else {}
    proc = subprocess.run(cmd, capture_output=True, text=True, **extra)
    if proc.returncode != 0:
        raise RuntimeError(f"{Path(cmd[0]).name} failed ({proc.returncode}): "
                           f"{(proc.stderr or proc.stdout).strip()[-500:]}")


@contextlib.contextmanager
def running(cpus: str | None = None) -> Iterator[str]:
    """A fresh PostgreSQL with the TechEmpower tables; yields its URL. `cpus`: taskset list."""
    binaries = bin_dir()
    if binaries is None:
        raise PostgresMissing("PostgreSQL is not installed (Debian: apt-get install -y postgresql)")
    psql = binaries / "psql" if (binaries / "psql").exists() else shutil.which("psql")
    if psql is None:
        raise PostgresMissing("psql is not installed (Debian: postgresql-client)")
    root = Path(tempfile.mkdtemp(prefix="dartle-postgres-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        account = _server_account(root)
        data = root / "data"
        _run([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
              "--encoding=UTF8", "--no-locale"], account)
        port = _free_port()
        pin = ["taskset", "-c", cpus] if cpus else []
        proc = subprocess.Popen(
            [*pin, str(binaries / "postgres"), "-D", str(data), "-p", str(port), "-k", str(root),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
             "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=200"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            **(account.popen_args() if account else {}))
        log = _Log(proc)
        if not log.wait(STARTUP_TIMEOUT):
            raise RuntimeError(f"PostgreSQL did not start:\n{log.text()}")
        connect = [str(psql), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-q",
                   "-v", "ON_ERROR_STOP=1"]
        _run([*connect, "-c", f"CREATE DATABASE {DATABASE}"])
        _run([*connect, "-d", DATABASE, "-f", str(SCHEMA)])
        yield f"postgresql://postgres@127.0.0.1:{port}/{DATABASE}"
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # fast shutdown: disconnect clients, stop
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    with running() as url:
        print(f"PostgreSQL running: TFB_DATABASE_URL={url}  (Ctrl-C to stop)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()
