"""Helpers for tests that need a real service binary (redis-server, postgres, chromium...).

When the binary is missing the test skips with a reason, unless DARTLE_REQUIRE_SERVICES=1
(as in CI), where a missing service is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket

import pytest


def services_required() -> bool:
    return os.environ.get("DARTLE_REQUIRE_SERVICES", "") not in ("", "0")


def require_binary(name: str, *candidates: str) -> str:
    """Return the path of `name` (or the first of `candidates` found), or skip/fail."""
    for candidate in (name, *candidates):
        path = shutil.which(candidate) or (candidate if os.path.isfile(candidate) else None)
        if path:
            return path
    message = f"{name} is not installed (install the Debian package, or run .ci/run)"
    if services_required():
        pytest.fail(message + " and DARTLE_REQUIRE_SERVICES=1")
    pytest.skip(message)


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for services that cannot be told to pick one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
