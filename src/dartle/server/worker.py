"""A worker process: serves the app on the supervisor's sockets and talks back to it.

The supervisor starts `python -m dartle.server.worker FD`, FD being the worker's end of a
socket pair. Over it come, as JSON lines: first the worker's settings (config, inherited
socket fds, its --max-requests), later heartbeat pings. Back go `ready` once the sockets
serve, `pong` for each ping, `recycle` when --max-requests is reached, and `failed` with
the message when the app cannot be loaded or its lifespan startup fails.

The pong is written from the event loop, so a loop blocked by the app stops answering
and the supervisor replaces the worker (--worker-healthcheck-timeout).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
from typing import Any

from dartle.config import Config
from dartle.server.importer import AppLoadError, load_app
from dartle.server.logs import configure_logging
from dartle.server.serve import EXIT_STARTUP_FAILURE, Server, bind_socket, run_server

logger = logging.getLogger("dartle.error")


class SupervisorLink:
    """The worker's end of the socket pair: announces, answers pings, asks to be recycled."""

    def __init__(self, channel: socket.socket, server: Server, max_requests: int | None) -> None:
        self.channel = channel
        self.server = server
        self.max_requests = max_requests
        self.recycle_asked = False
        self.buffer = b""

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.channel.send(json.dumps(message).encode() + b"\n")
        except (BlockingIOError, OSError):
            pass  # the supervisor is gone or not reading; it notices by itself

    def serving(self) -> None:
        """The sockets serve: tell the supervisor, then listen for its pings."""
        self.channel.setblocking(False)
        self.send({"event": "ready"})
        assert self.server.state is not None
        self.server.state.loop.add_reader(self.channel.fileno(), self._readable)

    def tick(self) -> None:
        state = self.server.state
        limit = self.max_requests
        if limit is not None and not self.recycle_asked and state is not None and state.requests >= limit:
            self.recycle_asked = True
            self.send({"event": "recycle", "reason": f"served {state.requests} requests "
                       f"(--max-requests, {limit} for this worker)"})

    def _readable(self) -> None:
        try:
            data = self.channel.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            # The supervisor died without stopping us: nobody would restart or stop this
            # worker any more, so leave as after SIGTERM.
            assert self.server.state is not None
            self.server.state.loop.remove_reader(self.channel.fileno())
            logger.warning("Supervisor went away: shutting down worker [%d]", os.getpid())
            self.server.request_exit()
            return
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            if line and json.loads(line).get("event") == "ping":
                self.send({"event": "pong"})


def _read_settings(channel: socket.socket) -> dict[str, Any]:
    data = b""
    while not data.endswith(b"\n"):
        chunk = channel.recv(65536)
        if not chunk:
            raise SystemExit("dartle worker: the supervisor closed the channel before the settings")
        data += chunk
    settings: dict[str, Any] = json.loads(data)
    return settings


def main(argv: list[str]) -> int:
    """Run one worker; returns its exit status (1: the app did not load, 3: startup failed)."""
    # Job control and hang-up signals are the supervisor's to act on, not each worker's.
    for sig in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU):
        signal.signal(sig, signal.SIG_IGN)
    channel = socket.socket(fileno=int(argv[1]))
    settings = _read_settings(channel)
    for path in settings.get("sys_path", []):
        if path not in sys.path:
            sys.path.append(path)
    config = Config(**settings["config"])
    configure_logging(config.log_level, config.log_config)
    try:
        app = load_app(config.app, config.factory, config.app_dir, config.interface, config.strict_asgi)
    except AppLoadError as exc:
        # The supervisor shows the message, with the worker's pid and what it does next.
        channel.sendall(json.dumps({"event": "failed", "status": 1, "message": str(exc)}).encode() + b"\n")
        return 1
    fds: list[int] = settings["fds"]
    if fds:
        sockets = [socket.socket(fileno=fd) for fd in fds]
        for sock in sockets:
            sock.setblocking(False)
    else:
        sockets = [bind_socket(config)]  # --reuse-port: a socket of our own on the shared port
    server = Server(config, app)
    server.announce = False
    server_link = SupervisorLink(channel, server, settings.get("max_requests"))
    server.on_serving = server_link.serving
    server.on_tick = server_link.tick
    status = run_server(server, sockets)
    if status == EXIT_STARTUP_FAILURE:
        channel.setblocking(True)
        server_link.send({"event": "failed", "status": status, "message": server.startup_failure})
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
