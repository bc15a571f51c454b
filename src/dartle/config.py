"""Server configuration: one dataclass, built from CLI flags or `dartle.run(**options)`.

Where each value may come from (flags, DARTLE_* variables, [tool.dartle] in pyproject.toml,
a --config file) is dartle.configsources' business; this module only says what is valid.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from dataclasses import dataclass, field
from typing import Any, Literal

LoopName = Literal["auto", "uvloop", "asyncio"]
LifespanMode = Literal["auto", "on", "off"]
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
# Sizes are in bytes; suffixes are powers of 1024 (K, M, G) or 1000 (KB, MB, GB).
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?i?b?)\s*", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "kib": 1024, "kb": 1000, "m": 1024**2, "mib": 1024**2,
          "mb": 1000**2, "g": 1024**3, "gib": 1024**3, "gb": 1000**3}


class ConfigError(ValueError):
    """Invalid option values; `problems` pairs each option's name with what is wrong."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(message for _, message in problems))
        self.problems = problems


def parse_size(text: str) -> int:
    """'512M' -> 536870912, '1.5GB' -> 1500000000, '4096' -> 4096 (bytes)."""
    match = _SIZE.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size (e.g. 512M, 2G, 300MB, or bytes)")
    return int(float(match.group(1)) * _UNITS[unit])


@dataclass
class Config:
    """Every server option, with the defaults `dartle run` uses.

    Names follow uvicorn's flags (with underscores) so that switching is one word.
    """

    app: Any = None
    host: str = "127.0.0.1"
    port: int = 8000
    uds: str | None = None
    fd: int | None = None
    factory: bool = False
    app_dir: str = "."
    loop: LoopName = "auto"
    lifespan: LifespanMode = "auto"
    root_path: str = ""
    log_level: str = "info"
    log_config: str | None = None
    access_log: bool = True
    proxy_headers: bool = True
    forwarded_allow_ips: str = field(
        default_factory=lambda: os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
    )
    server_header: bool = True
    date_header: bool = True
    timeout_keep_alive: float = 5.0
    timeout_header: float = 10.0
    timeout_graceful_shutdown: float = 30.0
    limit_concurrency: int | None = None
    backlog: int = 2048
    max_header_size: int = 32 * 1024
    max_body_size: int | None = None
    # WebSocket (server/websocket.py)
    ws: Literal["auto", "none", "websockets"] = "auto"
    ws_max_size: int = 16 * 1024 * 1024
    ws_ping_interval: float | None = 20.0
    ws_ping_timeout: float | None = 20.0
    ws_per_message_deflate: bool = True
    # TLS (server/tls.py): serving HTTPS needs a certificate (with its key, in the same
    # file or in ssl_keyfile); ssl_cert_reqs is ssl.CERT_NONE/OPTIONAL/REQUIRED (0/1/2).
    ssl_keyfile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile_password: str | None = None
    ssl_ca_certs: str | None = None
    ssl_cert_reqs: int = 0
    ssl_ciphers: str | None = None
    # HTTP/2 (server/http2.py): ALPN "h2" over TLS, h2c (prior knowledge or Upgrade) in clear
    http2: bool = True
    h2_max_concurrent_streams: int = 100
    # Seconds response data may wait on a shut flow-control window (or a peer that stops
    # reading) before the connection ends with GOAWAY ENHANCE_YOUR_CALM
    h2_stall_timeout: float = 30.0
    # What kind of callable the app is (auto: detected), and the strict ASGI checker
    interface: Literal["auto", "asgi3", "asgi2", "wsgi"] = "auto"
    strict_asgi: bool = False
    # Worker processes (server/supervisor.py): None serves in this process, unless one of
    # the recycling options or reload asks for a supervisor (then one worker).
    workers: int | None = None
    reuse_port: bool = False
    max_requests: int | None = None
    max_requests_jitter: int = 0
    max_worker_memory: int | None = field(default=None, metadata={"kind": "size"})
    worker_healthcheck_timeout: float = 10.0
    # Restart on code changes (server/reload.py); the lists add to the built-in patterns.
    reload: bool = False
    reload_dir: list[str] = field(default_factory=list)
    reload_include: list[str] = field(default_factory=list)
    reload_exclude: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.log_level, str):
            self.log_level = self.log_level.lower()
        if self.root_path.endswith("/"):
            self.root_path = self.root_path.rstrip("/")
        problems = self._problems()
        if problems:
            raise ConfigError(problems)

    def _problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []

        def bad(name: str, message: str) -> None:
            problems.append((name, message))

        if not 0 <= self.port <= 65535:
            bad("port", f"port {self.port} is not between 0 and 65535")
        for name in ("timeout_keep_alive", "timeout_header", "timeout_graceful_shutdown",
                     "worker_healthcheck_timeout"):
            if getattr(self, name) <= 0:
                bad(name, f"{name} must be positive, not {getattr(self, name)}")
        if self.max_header_size < 256:
            bad("max_header_size", f"max_header_size {self.max_header_size} is under 256 bytes")
        if self.max_body_size is not None and self.max_body_size < 0:
            bad("max_body_size", "max_body_size must not be negative")
        for name in ("limit_concurrency", "workers", "max_requests"):
            value = getattr(self, name)
            if value is not None and value < 1:
                bad(name, f"{name} must be at least 1, not {value}")
        if self.max_requests_jitter < 0:
            bad("max_requests_jitter", "max_requests_jitter must not be negative")
        if self.max_worker_memory is not None and self.max_worker_memory < 1024 * 1024:
            bad("max_worker_memory", f"max_worker_memory {self.max_worker_memory} bytes is under "
                "1 MiB; give a unit, e.g. 512M")
        choices = {
            "loop": ("auto", "uvloop", "asyncio"),
            "ws": ("auto", "none", "websockets"),
            "interface": ("auto", "asgi3", "asgi2", "wsgi"),
            "lifespan": ("auto", "on", "off"),
            "log_level": LOG_LEVELS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                bad(name, f"{name} must be {', '.join(allowed[:-1])} or {allowed[-1]}, "
                    f"not {getattr(self, name)!r}")
        if self.ws_max_size < 1:
            bad("ws_max_size", "ws_max_size must be at least 1 byte")
        if self.ssl_keyfile and not self.ssl_certfile:
            bad("ssl_keyfile", "ssl_keyfile needs ssl_certfile (the certificate it belongs to)")
        for name in ("ssl_keyfile_password", "ssl_ca_certs", "ssl_ciphers"):
            if getattr(self, name) and not self.ssl_certfile:
                bad(name, f"{name} only applies with ssl_certfile (serving TLS)")
        if self.ssl_cert_reqs not in (0, 1, 2):
            bad("ssl_cert_reqs", f"ssl_cert_reqs must be 0 (none), 1 (optional) or 2 (required), "
                f"not {self.ssl_cert_reqs!r}")
        if self.h2_max_concurrent_streams < 1:
            bad("h2_max_concurrent_streams", "h2_max_concurrent_streams must be at least 1")
        if self.h2_max_concurrent_streams > 2**31 - 1:
            bad("h2_max_concurrent_streams", "h2_max_concurrent_streams must be at most 2^31-1")
        if self.h2_stall_timeout <= 0:
            bad("h2_stall_timeout", f"h2_stall_timeout must be positive, not {self.h2_stall_timeout}")
        if self.reuse_port and (self.uds or self.fd is not None):
            bad("reuse_port", "reuse_port needs --host/--port, not --uds or --fd")
        return problems

    @property
    def supervised(self) -> bool:
        """Whether a supervisor runs the app in worker processes (dartle.server.supervisor)."""
        return (
            self.workers is not None or self.reload or self.max_requests is not None
            or self.max_worker_memory is not None
        )

    @classmethod
    def from_options(cls, app: Any, **options: Any) -> Config:
        """Build a Config from keyword options, naming any that are unknown."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"unknown server option(s): {', '.join(unknown)}")
        return cls(app=app, **options)

    @property
    def tls(self) -> bool:
        """Whether connections are served over TLS (a certificate is configured)."""
        return self.ssl_certfile is not None

    def trusted_proxies(self) -> TrustedProxies:
        return TrustedProxies(self.forwarded_allow_ips)


class TrustedProxies:
    """The set of peers whose X-Forwarded-* headers we believe (--forwarded-allow-ips)."""

    def __init__(self, spec: str) -> None:
        self.any = False
        self.hosts: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for item in (part.strip() for part in spec.split(",")):
            if not item:
                continue
            if item == "*":
                self.any = True
                continue
            try:
                self.networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                self.hosts.add(item)  # a literal such as "unix:" for Unix-socket peers

    def __contains__(self, host: str | None) -> bool:
        if self.any:
            return True
        if host is None:
            return "unix:" in self.hosts
        if host in self.hosts:
            return True
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(addr in net for net in self.networks)
