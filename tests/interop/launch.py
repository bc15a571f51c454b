"""Start hypercorn or granian so that tests.support.servers.run_command can wait for them.

    python tests/interop/launch.py hypercorn|granian module:app [server flags ...]

run_command waits for a "running on http://HOST:PORT" line, which dartle and uvicorn
print with the real port; hypercorn says "Running on" and granian prints the port it was
given, so this launcher prints the line itself:

- hypercorn gets a socket we bound and made listen (`--bind fd://N`), so it is ready the
  moment the line is printed (connections wait in the backlog until it accepts);
- granian binds in each worker (SO_REUSEPORT on Linux) and takes no socket, so we choose
  a free port and print the line once a connection to it succeeds — probing is the only
  readiness signal granian gives.

SIGTERM and SIGINT are passed on to the server; we exit with its status.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

READY_TIMEOUT = 30.0


def _hypercorn(target: str, extra: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    fd = sock.fileno()
    child = subprocess.Popen(
        [sys.executable, "-m", "hypercorn", "--bind", f"fd://{fd}", "--workers", "1", *extra, target],
        pass_fds=[fd],
    )
    sock.close()  # the child holds its own copy
    return child, port


def _granian(target: str, extra: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    child = subprocess.Popen([
        sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
        "--port", str(port), "--workers", "1", *extra, target,
    ])
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if child.poll() is not None:
            raise SystemExit(f"granian exited with status {child.returncode} before accepting")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return child, port
        except OSError:
            if time.monotonic() > deadline:
                child.kill()
                raise SystemExit(f"granian did not accept connections on port {port}") from None
            time.sleep(0.05)


def main() -> int:
    kind, target, *extra = sys.argv[1:]
    starters = {"hypercorn": _hypercorn, "granian": _granian}
    child, port = starters[kind](target, extra)

    def forward(signum: int, frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    print(f"{kind} running on http://127.0.0.1:{port}", flush=True)
    return child.wait()


if __name__ == "__main__":
    sys.exit(main())
