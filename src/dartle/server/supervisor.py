"""The supervisor: worker processes on shared sockets, kept alive, replaced, recycled.

The supervisor binds once (or, with --reuse-port, only reserves the port and each worker
binds its own socket), then starts --workers worker processes (server/worker.py), each a
fresh interpreter that imports the app itself. It keeps the listening sockets open all
along, so connections wait in the backlog whenever a worker comes or goes.

Each worker fills a *slot*. A slot's worker is replaced in place, new before old: the
new worker is started, and only once it serves is the old one told to stop (SIGTERM,
graceful). SIGHUP and --reload do that for every slot, one after the other;
--max-requests and --max-worker-memory for one. A worker that dies is restarted after a
back-off that doubles while workers keep dying young; one whose app cannot start
(lifespan startup failed, or the app does not import) stops the supervisor instead of
being restarted in a loop. A worker whose event loop does not answer the heartbeat is
killed and replaced.

Signals: SIGTERM/SIGINT stop gracefully (a second SIGINT forces), SIGHUP restarts all
workers, SIGTTIN adds a worker, SIGTTOU removes one.

The supervisor is a plain select loop: signals arrive through signal.set_wakeup_fd, the
workers' messages through their socket pairs, reload events through a socket pair from
the watcher thread.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import logging
import os
import queue
import random
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from dartle.config import Config
from dartle.server.activation import systemd_sockets
from dartle.server.serve import EXIT_STARTUP_FAILURE, bind_socket, describe

logger = logging.getLogger("dartle.error")

EXIT_APP_LOAD = 1
BACKOFF_FIRST = 0.1  # seconds before restarting a worker that died young
BACKOFF_MAX = 10.0
STABLE_UPTIME = 10.0  # a worker that lived this long resets the back-off
STOP_GRACE_EXTRA = 5.0  # beyond --timeout-graceful-shutdown, then SIGKILL
MEMORY_CHECK_EVERY = 1.0
MAX_WAIT = 0.5  # the loop's longest sleep: timers (back-off, heartbeat, memory) need no more
_HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGCHLD)


class Worker:
    """One worker process and the supervisor's end of its socket pair."""

    def __init__(self, proc: subprocess.Popen[bytes], channel: socket.socket) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.channel = channel
        self.started = time.monotonic()
        self.ready = False
        self.stopping = False
        self.kill_at: float | None = None
        self.ping_sent: float | None = None
        self.last_pong = self.started
        self.failure: tuple[int, str] | None = None  # what the worker said before failing
        self.killed_because: str | None = None
        self.buffer = b""

    def signal(self, sig: int) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)

    def send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            self.channel.send(json.dumps(message).encode() + b"\n")


@dataclasses.dataclass(eq=False)
class Slot:
    """A place for one worker: `current` serves, `next` is its replacement starting up."""

    current: Worker | None = None
    next: Worker | None = None
    restart_at: float | None = None
    quick_deaths: int = 0
    replace_after: float = 0.0  # no new replacement attempt before this (after one failed)


class Supervisor:
    """Runs `config.app` in worker processes until SIGTERM/SIGINT; `run()` returns the exit status."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.slots: list[Slot] = []
        self.retiring: list[Worker] = []
        self.roll: collections.deque[Slot] = collections.deque()
        self.roll_label: str | None = None  # "Rolling restart", "Reload": logged when done
        self.roll_started = 0.0
        self.stopping = False
        self.exit_code = 0
        self.ever_ready = False
        self.sockets: list[socket.socket] = []
        self.worker_config: dict[str, Any] = {}
        self.selector = selectors.DefaultSelector()
        self.changes: queue.SimpleQueue[list[str]] = queue.SimpleQueue()
        self.next_memory_check = 0.0
        timeout = config.worker_healthcheck_timeout
        self.ping_every = min(1.0, timeout / 2)

    # -- the loop ---------------------------------------------------------------------

    def run(self) -> int:
        logger.info("Started supervisor process [%d]", os.getpid())
        if self.config.max_worker_memory is not None and _rss_bytes(os.getpid()) is None:
            logger.warning("--max-worker-memory needs /proc (Linux): worker memory is not watched")
        self.sockets = self._bind()
        self.worker_config = self._worker_config()
        wake_r, wake_w = socket.socketpair()
        for sock in (wake_r, wake_w):
            sock.setblocking(False)
        self.selector.register(wake_r, selectors.EVENT_READ, self._on_wakeup)
        previous = {sig: signal.signal(sig, _noop) for sig in _HANDLED}
        old_wakeup = signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
        reloader = None
        try:
            reloader = self._start_reloader(wake_w)
            for _ in range(self.config.workers or 1):
                slot = Slot()
                self.slots.append(slot)
                self._start(slot)
            while not (self.stopping and not any(True for _ in self._workers())):
                now = time.monotonic()
                self._housekeep(now)
                for key, _ in self.selector.select(self._wait(now)):
                    key.data(key.fileobj)
                self._reap()
        finally:
            if reloader is not None:
                reloader.stop()
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for worker in list(self._workers()):
                worker.proc.kill()
                worker.proc.wait()
            for sock in (*self.sockets, wake_r, wake_w):
                sock.close()
            self.selector.close()
        logger.info("Finished supervisor process [%d]", os.getpid())
        return self.exit_code

    def _workers(self) -> Iterator[Worker]:
        for slot in self.slots:
            if slot.current is not None:
                yield slot.current
            if slot.next is not None:
                yield slot.next
        yield from self.retiring

    def _wait(self, now: float) -> float:
        deadlines = [now + MAX_WAIT]
        deadlines.extend(s.restart_at for s in self.slots if s.restart_at is not None)
        deadlines.extend(w.kill_at for w in self._workers() if w.kill_at is not None)
        return max(0.0, min(deadlines) - now)

    # -- sockets and starting workers ------------------------------------------------

    def _bind(self) -> list[socket.socket]:
        config = self.config
        activated = systemd_sockets()
        if activated:
            if config.reuse_port:
                logger.warning("--reuse-port ignored: serving the sockets systemd passed")
                self.config = dataclasses.replace(config, reuse_port=False)
            return activated
        if not config.reuse_port:
            return [bind_socket(config)]
        # Only reserve the port (bound, not listening, so it takes no connections); each
        # worker binds and listens on it with SO_REUSEPORT.
        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((config.host, config.port))
        except OSError as exc:
            sock.close()
            raise OSError(f"cannot bind {config.host}:{config.port}: {exc.strerror or exc}") from exc
        self.config = dataclasses.replace(config, port=sock.getsockname()[1])
        return [sock]

    def _worker_config(self) -> dict[str, Any]:
        values = dataclasses.asdict(self.config)
        values.update(workers=None, reload=False, fd=None)
        return values

    def _start(self, slot: Slot) -> Worker:
        """Start a worker for `slot`: its current one if empty, else its replacement."""
        config = self.config
        parent, child = socket.socketpair()
        fds = [] if config.reuse_port else [sock.fileno() for sock in self.sockets]
        env = dict(os.environ)
        if config.reload:
            # A stale .pyc written in the same second as an edit of the same size would be
            # taken for current: under reload, workers write no bytecode.
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        proc = subprocess.Popen(
            [sys.executable, "-m", "dartle.server.worker", str(child.fileno())],
            pass_fds=[*fds, child.fileno()],
            env=env,
        )
        child.close()
        max_requests = config.max_requests
        if max_requests is not None and config.max_requests_jitter:
            max_requests += random.randint(0, config.max_requests_jitter)
        settings = {"config": self.worker_config, "fds": fds, "max_requests": max_requests,
                    "sys_path": sys.path}
        worker = Worker(proc, parent)
        parent.sendall(json.dumps(settings).encode() + b"\n")
        parent.setblocking(False)
        self.selector.register(parent, selectors.EVENT_READ, lambda _: self._on_message(worker))
        if slot.current is None:
            slot.current = worker
        else:
            slot.next = worker
        slot.restart_at = None
        logger.info("Started worker [%d]", worker.pid)
        return worker

    def _start_reloader(self, wake: socket.socket) -> Any:
        if not self.config.reload:
            return None
        from dartle.server.reload import Reloader

        def changed(paths: list[str]) -> None:  # runs in the watcher thread
            self.changes.put(paths)
            with contextlib.suppress(OSError):
                wake.send(b"\0")

        config = self.config
        reloader = Reloader(config.reload_dir or [config.app_dir], config.reload_include,
                            config.reload_exclude, changed)
        reloader.start()
        return reloader

    # -- events ----------------------------------------------------------------------

    def _on_wakeup(self, sock: Any) -> None:
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            return
        for signum in data:
            if signum:
                self._on_signal(signum)
        while True:
            try:
                paths = self.changes.get_nowait()
            except queue.Empty:
                break
            self._on_change(paths)

    def _on_signal(self, signum: int) -> None:
        if signum in (signal.SIGINT, signal.SIGTERM):
            if not self.stopping:
                logger.info("Received %s: stopping the workers", signal.Signals(signum).name)
                self._stop_all()
            elif signum == signal.SIGINT:
                logger.warning("Second interrupt: forcing the workers to exit")
                for worker in self._workers():
                    worker.signal(signal.SIGINT)
        elif self.stopping:
            return
        elif signum == signal.SIGHUP:
            logger.info("Received SIGHUP: restarting the workers one by one")
            self._roll_all("Rolling restart")
        elif signum == signal.SIGTTIN:
            slot = Slot()
            self.slots.append(slot)
            logger.info("Received SIGTTIN: adding a worker (now %d)", len(self.slots))
            self._start(slot)
        elif signum == signal.SIGTTOU:
            if len(self.slots) <= 1:
                logger.warning("Received SIGTTOU: keeping the last worker")
                return
            slot = self.slots.pop()
            logger.info("Received SIGTTOU: removing a worker (now %d)", len(self.slots))
            with contextlib.suppress(ValueError):
                self.roll.remove(slot)
            for leaving in (slot.current, slot.next):
                if leaving is not None:
                    self._retire(leaving)

    def _on_change(self, paths: list[str]) -> None:
        if self.stopping:
            return
        shown = ", ".join(_short(p) for p in paths[:5]) + (" ..." if len(paths) > 5 else "")
        logger.info("Detected changes in %s: reloading", shown)
        # Replacements already starting may have imported the old code: start over.
        for slot in self.slots:
            if slot.next is not None:
                self._retire(slot.next)
                slot.next = None
            slot.quick_deaths = 0
            slot.replace_after = 0.0
        self._roll_all("Reload")

    def _on_message(self, worker: Worker) -> None:
        try:
            data = worker.channel.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.selector.unregister(worker.channel)
            return
        worker.buffer += data
        *lines, worker.buffer = worker.buffer.split(b"\n")
        for line in lines:
            if line:
                self._on_event(worker, json.loads(line))

    def _on_event(self, worker: Worker, message: dict[str, Any]) -> None:
        event = message.get("event")
        if event == "pong":
            worker.last_pong = time.monotonic()
            worker.ping_sent = None
        elif event == "ready":
            self._on_ready(worker)
        elif event == "failed":
            worker.failure = (int(message.get("status", 1)), str(message.get("message")))
        elif event == "recycle":
            slot = self._slot_of(worker)
            if slot is not None and slot.current is worker and not self.stopping:
                logger.info("Worker [%d] %s: replacing it", worker.pid, message.get("reason"))
                self._queue(slot)

    def _on_ready(self, worker: Worker) -> None:
        worker.ready = True
        worker.last_pong = time.monotonic()
        logger.info("Worker [%d] serving", worker.pid)
        if not self.ever_ready:
            self.ever_ready = True
            for sock in self.sockets:
                logger.info("dartle running on %s (Press CTRL+C to quit)",
                            describe(sock, self.config.tls))
        slot = self._slot_of(worker)
        if slot is None:
            return
        if slot.next is worker:
            old = slot.current
            slot.current, slot.next = worker, None
            if old is not None:
                self._retire(old)
        if self.roll and self.roll[0] is slot:
            if worker.started >= self.roll_started:
                self.roll.popleft()  # started after the roll began: it runs the new code
            self._advance_roll()

    # -- replacing workers -----------------------------------------------------------

    def _roll_all(self, label: str) -> None:
        self.roll_label = label
        self.roll_started = time.monotonic()
        self.roll = collections.deque(self.slots)
        self._advance_roll()

    def _queue(self, slot: Slot) -> None:
        if slot not in self.roll and slot.next is None:
            self.roll.append(slot)
            if len(self.roll) == 1:
                self._advance_roll()

    def _advance_roll(self) -> None:
        """Start the replacement for the first slot in the roll (one at a time)."""
        while self.roll and not self.stopping:
            slot = self.roll[0]
            if slot not in self.slots:
                self.roll.popleft()
                continue
            if slot.next is None and (slot.current is None or slot.current.ready):
                self._start(slot)
            return

    def _retire(self, worker: Worker) -> None:
        """Tell a worker to stop gracefully; kill it if it is still there past the grace."""
        if not worker.stopping:
            worker.stopping = True
            worker.kill_at = time.monotonic() + self.config.timeout_graceful_shutdown + STOP_GRACE_EXTRA
            worker.signal(signal.SIGTERM)
        if worker not in self.retiring:
            self.retiring.append(worker)
        for slot in self.slots:
            if slot.current is worker:
                slot.current = None
            if slot.next is worker:
                slot.next = None

    def _stop_all(self, code: int | None = None) -> None:
        self.stopping = True
        if code is not None:
            self.exit_code = code
        self.roll.clear()
        for slot in self.slots:
            slot.restart_at = None
        for worker in list(self._workers()):
            self._retire(worker)

    # -- exits -----------------------------------------------------------------------

    def _reap(self) -> None:
        for worker in list(self._workers()):
            status = worker.proc.poll()
            if status is not None:
                self._drain(worker)
                self._on_exit(worker, status)

    def _drain(self, worker: Worker) -> None:
        """Read what the worker said before exiting (its failure message), then close."""
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(worker.channel)
        while True:
            try:
                data = worker.channel.recv(65536)
            except OSError:
                break
            if not data:
                break
            worker.buffer += data
        for line in worker.buffer.split(b"\n"):
            if line:
                with contextlib.suppress(ValueError):
                    self._on_event(worker, json.loads(line))
        worker.channel.close()

    def _on_exit(self, worker: Worker, status: int) -> None:
        how = _describe_exit(status)
        if worker in self.retiring:
            self.retiring.remove(worker)
            logger.info("Worker [%d] stopped (%s)", worker.pid, how)
            self._maybe_roll_done()
            return
        slot = self._slot_of(worker)
        if slot is None:
            return
        now = time.monotonic()
        failure = worker.failure
        said = f": {failure[1]}" if failure else ""
        if slot.next is worker:
            # A replacement that never served: the old worker goes on serving.
            slot.next = None
            slot.quick_deaths += 1
            slot.replace_after = now + _backoff(slot.quick_deaths)
            waiting = "; waiting for a file change" if self.config.reload else ""
            logger.error("New worker [%d] failed to start (%s)%s%s", worker.pid, how, said, waiting)
            self._abandon_roll()
            return
        slot.current = None
        if not worker.ready:
            if self.config.reload:
                logger.error("Worker [%d] failed to start (%s)%s; waiting for a file change",
                             worker.pid, how, said)
                self._abandon_roll()
                return
            fatal = status == EXIT_STARTUP_FAILURE or (status == EXIT_APP_LOAD and not self.ever_ready)
            if fatal:
                logger.error("Worker [%d] could not start the application (%s)%s; stopping "
                             "(exit status %d)", worker.pid, how, said, status)
                self._stop_all(status)
                return
        if worker.killed_because is not None:
            delay = 0.0
        elif now - worker.started >= STABLE_UPTIME:
            slot.quick_deaths, delay = 0, 0.0
        else:
            slot.quick_deaths += 1
            delay = _backoff(slot.quick_deaths)
        if slot.next is not None:
            logger.warning("Worker [%d] died (%s)%s; its replacement [%d] is starting",
                           worker.pid, worker.killed_because or how, said, slot.next.pid)
            return
        logger.warning("Worker [%d] died (%s)%s; restarting it in %.1fs", worker.pid,
                       worker.killed_because or how, said, delay)
        slot.restart_at = now + delay

    def _abandon_roll(self) -> None:
        if self.roll:
            what = self.roll_label or "Replacing the worker"
            logger.warning("%s abandoned: the running workers keep serving", what)
            self.roll.clear()
        self.roll_label = None

    def _maybe_roll_done(self) -> None:
        if self.roll_label and not self.roll and not self.retiring and not self.stopping:
            logger.info("%s complete", self.roll_label)
            self.roll_label = None

    # -- timers ------------------------------------------------------------------------

    def _housekeep(self, now: float) -> None:
        for worker in list(self._workers()):
            if worker.kill_at is not None and now >= worker.kill_at:
                logger.warning("Worker [%d] still running after the graceful timeout: killing it",
                               worker.pid)
                worker.kill_at = None
                worker.signal(signal.SIGKILL)
        if self.stopping:
            return
        for slot in self.slots:
            if slot.restart_at is not None and now >= slot.restart_at and slot.current is None:
                self._start(slot)
        self._heartbeat(now)
        if self.config.max_worker_memory is not None and now >= self.next_memory_check:
            self.next_memory_check = now + MEMORY_CHECK_EVERY
            self._check_memory(self.config.max_worker_memory, now)
        self._maybe_roll_done()

    def _heartbeat(self, now: float) -> None:
        timeout = self.config.worker_healthcheck_timeout
        for slot in self.slots:
            for worker in (slot.current, slot.next):
                if worker is None or not worker.ready or worker.killed_because is not None:
                    continue
                if worker.ping_sent is None:
                    if now - worker.last_pong >= self.ping_every:
                        worker.ping_sent = now
                        worker.send({"event": "ping"})
                elif now - worker.ping_sent > timeout:
                    worker.killed_because = f"no heartbeat answer for {timeout:g}s"
                    logger.error("Worker [%d] did not answer the heartbeat within %gs "
                                 "(--worker-healthcheck-timeout): killing it", worker.pid, timeout)
                    worker.signal(signal.SIGKILL)

    def _check_memory(self, limit: int, now: float) -> None:
        for slot in self.slots:
            worker = slot.current
            if worker is None or not worker.ready or slot.next is not None or slot in self.roll:
                continue
            if now < slot.replace_after:
                continue
            rss = _rss_bytes(worker.pid)
            if rss is not None and rss > limit:
                logger.warning("Worker [%d] uses %.1f MiB, over --max-worker-memory %.1f MiB: "
                               "replacing it", worker.pid, rss / 2**20, limit / 2**20)
                self._queue(slot)

    def _slot_of(self, worker: Worker) -> Slot | None:
        for slot in self.slots:
            if slot.current is worker or slot.next is worker:
                return slot
        return None


def _noop(signum: int, frame: Any) -> None:
    """Signals are read from the wakeup fd; the handler only has to exist."""


def _short(path: str) -> str:
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _backoff(deaths: int) -> float:
    return float(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (deaths - 1)))


def _describe_exit(status: int) -> str:
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss_bytes(pid: int) -> int | None:
    """A process's resident set size, from /proc (Linux); None where that is unavailable."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None

