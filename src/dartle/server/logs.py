"""Logging set-up: `dartle.error` for the server, `dartle.access` for the access log."""

from __future__ import annotations

import json
import logging
import logging.config
import os
import sys
from time import perf_counter
from typing import Any

LEVELS = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": 5,
}


access_logger = logging.getLogger("dartle.access")


def _who_and_target(scope: Any) -> tuple[str, str]:
    client = scope.get("client")
    who = "%s:%d" % tuple(client) if client else "-"  # noqa: UP031
    target = scope["raw_path"].decode("latin-1")
    if scope["query_string"]:
        target += "?" + scope["query_string"].decode("latin-1")
    return who, target


def log_request(scope: Any, status: int, size: int, started: float | None) -> None:
    """The access-log line of an HTTP request: client, request line, status, body bytes, ms.

    `started` is the request's `perf_counter()` start (None: unknown, logged as 0 ms).
    """
    who, target = _who_and_target(scope)
    millis = (perf_counter() - started) * 1000 if started is not None else 0.0
    access_logger.info(
        '%s - "%s %s HTTP/%s" %d %d %.2fms',
        who, scope["method"], target, scope["http_version"], status, size, millis,
    )


def log_websocket(scope: Any, status: int) -> None:
    """The access-log line of a WebSocket handshake: client, path, status (HTTP/2 named)."""
    who, target = _who_and_target(scope)
    if scope.get("http_version") == "2":
        access_logger.info('%s - "WebSocket %s HTTP/2" %d', who, target, status)
    else:
        access_logger.info('%s - "WebSocket %s" %d', who, target, status)


class _Formatter(logging.Formatter):
    """`INFO:     message`, aligned like uvicorn's, so logs read the same after a switch."""

    def format(self, record: logging.LogRecord) -> str:
        record.levelprefix = (record.levelname + ":").ljust(9)
        return super().format(record)


def configure_logging(level: str = "info", log_config: str | None = None) -> None:
    """Apply --log-config (JSON, YAML or INI file) or our default handlers, then --log-level."""
    if log_config:
        if not os.path.exists(log_config):
            raise ValueError(f"log config file {log_config!r} does not exist")
        if log_config.endswith(".json"):
            with open(log_config) as f:
                logging.config.dictConfig(json.load(f))
        elif log_config.endswith((".yaml", ".yml")):
            try:
                import yaml  # type: ignore[import-untyped,unused-ignore]
            except ImportError as exc:
                raise ValueError("a YAML --log-config needs PyYAML installed") from exc
            with open(log_config) as f:
                logging.config.dictConfig(yaml.safe_load(f))
        else:
            logging.config.fileConfig(log_config, disable_existing_loggers=False)
    else:
        # One handler on "dartle": the server's loggers (dartle.error, dartle.access) and
        # the framework's (dartle.web.*) all print the same way at the same level.
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Formatter("%(levelprefix)s %(message)s"))
        root = logging.getLogger("dartle")
        root.handlers[:] = [handler]
        root.propagate = False
        for name in ("dartle.error", "dartle.access"):
            logger = logging.getLogger(name)
            logger.handlers[:] = []
            logger.propagate = True
    numeric = LEVELS.get(level.lower())
    if numeric is None:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LEVELS)}")
    for name in ("dartle", "dartle.error", "dartle.access"):
        logging.getLogger(name).setLevel(numeric)
