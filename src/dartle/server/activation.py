"""Socket activation: listening sockets handed over by systemd (sd_listen_fds(3)).

systemd (or `systemd-socket-activate`) passes sockets as file descriptors 3, 4, ... and
says so in LISTEN_FDS, with LISTEN_PID naming the process they are meant for, so that a
child which inherited the variables does not take them for its own.
"""

from __future__ import annotations

import logging
import os
import socket

logger = logging.getLogger("dartle.error")

SD_LISTEN_FDS_START = 3
_VARIABLES = ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")


def systemd_sockets(environ: dict[str, str] | None = None) -> list[socket.socket]:
    """The sockets systemd passed to this process, or [] when it passed none.

    The variables are removed once read, so processes we start never see them.
    """
    env = os.environ if environ is None else environ
    count_text, pid_text = env.get("LISTEN_FDS"), env.get("LISTEN_PID")
    if not count_text or not pid_text:
        return []
    for name in _VARIABLES:
        env.pop(name, None)
    try:
        count, pid = int(count_text), int(pid_text)
    except ValueError:
        logger.warning("Ignoring LISTEN_FDS=%r LISTEN_PID=%r: not numbers", count_text, pid_text)
        return []
    if pid != os.getpid() or count < 1:
        return []
    sockets = []
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count):
        sock = socket.socket(fileno=fd)
        if sock.type != socket.SOCK_STREAM:
            sock.detach()
            raise OSError(f"systemd passed fd {fd}, which is not a stream socket")
        sock.set_inheritable(False)
        sock.setblocking(False)
        sockets.append(sock)
    logger.info("Using %d socket(s) passed by systemd (LISTEN_FDS)", count)
    return sockets
