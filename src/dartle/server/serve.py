"""The server: bind, lifespan, accept, a once-per-tick housekeeper, signals, graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import socket
import stat
from collections.abc import Callable
from typing import Any, Protocol

from dartle.asgi.types import ASGIApp
from dartle.config import Config
from dartle.server.activation import systemd_sockets
from dartle.server.http1 import H1Connection
from dartle.server.lifespan import Lifespan
from dartle.server.tls import build_tls
from dartle.server.wire import CommonHeaders

logger = logging.getLogger("dartle.error")

# Housekeeping period: the Date header, keep-alive and header timeouts run on this clock,
# so connections never arm timers of their own on the per-request path.
TICK = 0.5
EXIT_STARTUP_FAILURE = 3


class Connection(Protocol):
    """What the server's housekeeping needs from any connection (HTTP/1, WebSocket, ...)."""

    def tick(self, now: int, keep_alive_ticks: int, header_ticks: int) -> None: ...

    def shutdown(self) -> None: ...

    def force_close(self) -> None: ...


class ServerState:
    """What every connection of one server shares: config, app, clock, counters."""

    def __init__(self, config: Config, app: ASGIApp, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.app = app
        self.loop = loop
        self.common = CommonHeaders(config.date_header, config.server_header)
        self.trusted = config.trusted_proxies()
        self.tls = build_tls(config)
        self.lifespan_state: dict[str, Any] = {}
        self.access_log = config.access_log and logging.getLogger("dartle.access").isEnabledFor(
            logging.INFO
        )
        self.connections: set[Connection] = set()
        self.tasks = 0
        self.requests = 0  # app tasks finished: the worker's --max-requests count
        self.ticks = 0
        self.limit = config.limit_concurrency
        self.shutting_down = False
        self.drained = asyncio.Event()

    def over_limit(self) -> bool:
        limit = self.limit
        return limit is not None and (len(self.connections) > limit or self.tasks >= limit)

    def task_done(self) -> None:
        self.tasks -= 1
        self.requests += 1
        if self.shutting_down and not self.tasks and not self.connections:
            self.drained.set()

    def connection_closed(self) -> None:
        if self.shutting_down and not self.tasks and not self.connections:
            self.drained.set()


class Server:
    """One server process: serves `app` on the configured sockets until told to stop."""

    def __init__(self, config: Config, app: ASGIApp) -> None:
        self.config = config
        self.app = app
        self.should_exit: asyncio.Event | None = None
        self.force_exit = False
        self.exit_code = 0
        self._servers: list[asyncio.AbstractServer] = []
        self.state: ServerState | None = None
        # A worker process (server/worker.py) hooks in here; a lone server leaves them be.
        self.announce = True
        self.on_serving: Callable[[], None] | None = None
        self.on_tick: Callable[[], None] | None = None
        self.startup_failure: str | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> int:
        """Serve until SIGINT/SIGTERM (or `request_exit()`); returns the exit status."""
        loop = asyncio.get_running_loop()
        config = self.config
        self.should_exit = asyncio.Event()
        state = self.state = ServerState(config, self.app, loop)
        self._install_signal_handlers(loop)
        logger.info("Started server process [%d]", os.getpid())
        if sockets is None:
            sockets = systemd_sockets() or [bind_socket(config)]
        lifespan = Lifespan(self.app, config.lifespan)
        state.lifespan_state = lifespan.state
        if not await lifespan.startup():
            self.startup_failure = lifespan.failed_message or "the lifespan startup raised"
            for sock in sockets:
                sock.close()
            return EXIT_STARTUP_FAILURE
        if self.should_exit.is_set():
            await lifespan.shutdown()
            return 0
        ssl: dict[str, Any] = {}
        if state.tls is not None:
            # The header timeout also bounds the handshake: both guard against slowloris.
            ssl = {"ssl": state.tls.context, "ssl_handshake_timeout": config.timeout_header}
        for sock in sockets:
            if sock.family == getattr(socket, "AF_UNIX", None):
                server = await loop.create_unix_server(
                    lambda: H1Connection(state), sock=sock, backlog=config.backlog, **ssl
                )
            else:
                server = await loop.create_server(
                    lambda: H1Connection(state), sock=sock, backlog=config.backlog, **ssl
                )
            self._servers.append(server)
            if self.announce:
                logger.info("dartle running on %s (Press CTRL+C to quit)",
                            describe(sock, config.tls))
        if self.on_serving is not None:
            self.on_serving()
        ticker = loop.create_task(self._tick())
        await self.should_exit.wait()
        await self._shutdown(state)
        ticker.cancel()
        await lifespan.shutdown()
        await _cancel_leftovers()
        return self.exit_code

    def request_exit(self) -> None:
        if self.should_exit is not None:
            self.should_exit.set()

    async def _tick(self) -> None:
        state = self.state
        assert state is not None
        config = self.config
        keep_alive_ticks = max(1, math.ceil(config.timeout_keep_alive / TICK))
        header_ticks = max(1, math.ceil(config.timeout_header / TICK))
        common = state.common
        while True:
            await asyncio.sleep(TICK)
            state.ticks += 1
            common.refresh()
            if self.on_tick is not None:
                self.on_tick()
            now = state.ticks
            for conn in list(state.connections):
                conn.tick(now, keep_alive_ticks, header_ticks)

    async def _shutdown(self, state: ServerState) -> None:
        logger.info("Shutting down")
        state.shutting_down = True
        for server in self._servers:
            server.close()
        if state.connections:
            # A connection accepted a moment ago may not have delivered its first request
            # yet (its client cannot know we are leaving): idle connections get one tick to
            # send a request, which is answered, before they are closed. Under workers this
            # is what keeps a rolling restart free of failed requests.
            await asyncio.sleep(TICK)
        for conn in list(state.connections):
            conn.shutdown()
        if state.connections or state.tasks:
            if not state.connections and not state.tasks:
                state.drained.set()
            logger.info("Waiting for connections to close. (CTRL+C to force quit)")
            try:
                await asyncio.wait_for(
                    self._drained_or_forced(state), self.config.timeout_graceful_shutdown
                )
            except asyncio.TimeoutError:
                logger.warning(
                    "Graceful shutdown timed out after %.1fs: closing %d connection(s)",
                    self.config.timeout_graceful_shutdown, len(state.connections),
                )
            self._abort_all(state)

    async def _drained_or_forced(self, state: ServerState) -> None:
        force = self._force_event = asyncio.Event()
        drained = asyncio.ensure_future(state.drained.wait())
        forced = asyncio.ensure_future(force.wait())
        try:
            await asyncio.wait((drained, forced), return_when=asyncio.FIRST_COMPLETED)
        finally:
            drained.cancel()
            forced.cancel()

    def _abort_all(self, state: ServerState) -> None:
        for conn in list(state.connections):
            conn.force_close()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task() and _is_request_task(task):
                task.cancel()

    def _install_signal_handlers(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self._on_signal, sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread, or a platform without signals: the caller stops us

    def _on_signal(self, sig: int) -> None:
        assert self.should_exit is not None
        if self.should_exit.is_set():
            if sig == signal.SIGINT:
                logger.warning("Second interrupt: forcing exit")
                self.force_exit = True
                force = getattr(self, "_force_event", None)
                if force is not None:
                    force.set()
            return
        self.should_exit.set()


async def _cancel_leftovers() -> None:
    """End the tasks still pending (idle connection workers, abandoned app tasks)."""
    current = asyncio.current_task()
    leftovers = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    for task in leftovers:
        task.cancel()
    if leftovers:
        await asyncio.wait(leftovers, timeout=1.0)


def _is_request_task(task: asyncio.Task[Any]) -> bool:
    coro = task.get_coro()
    return getattr(coro, "__qualname__", "") in ("Cycle.run", "Runner._work")


def bind_socket(config: Config) -> socket.socket:
    """The listening socket from --fd, --uds, or --host/--port (port 0 picks a free one)."""
    if config.fd is not None:
        sock = socket.socket(fileno=config.fd)
        sock.setblocking(False)
        return sock
    if config.uds:
        path = config.uds
        if os.path.exists(path) and stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)  # a stale socket from an earlier run
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
        os.chmod(path, 0o666)
        sock.listen(config.backlog)
        sock.setblocking(False)
        return sock
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if config.reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((config.host, config.port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot bind {config.host}:{config.port}: {exc.strerror or exc}") from exc
    sock.listen(config.backlog)
    sock.setblocking(False)
    return sock


def describe(sock: socket.socket, tls: bool = False) -> str:
    """Where `sock` serves, as the startup line shows it (a URL a browser can open)."""
    name = sock.getsockname()
    if sock.family == getattr(socket, "AF_UNIX", None):
        return f"unix socket {name}" + (" (TLS)" if tls else "")
    host, port = name[0], name[1]
    if sock.family == socket.AF_INET6:
        host = f"[{host}]"
    return f"{'https' if tls else 'http'}://{host}:{port}"


def new_event_loop(name: str) -> asyncio.AbstractEventLoop:
    """The event loop for --loop: uvloop when asked or available ("auto"), else asyncio."""
    if name in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if name == "uvloop":
                raise ValueError("--loop uvloop was asked for, but uvloop is not installed") from None
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def serve(config: Config, app: ASGIApp, sockets: list[socket.socket] | None = None) -> int:
    """Run one server to completion on a new event loop; returns the exit status."""
    return run_server(Server(config, app), sockets)


def run_server(server: Server, sockets: list[socket.socket] | None = None) -> int:
    """Run `server` to completion on a new event loop (--loop); returns the exit status."""
    loop = new_event_loop(server.config.loop)
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(server.serve(sockets))
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
