"""Server configuration: one dataclass, built from CLI flags or `dartle.run(**options)`."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from dataclasses import dataclass, field
from typing import Any, Literal

LoopName = Literal["auto", "uvloop", "asyncio"]
LifespanMode = Literal["auto", "on", "off"]


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
    # What kind of callable the app is (auto: detected), and the strict ASGI checker
    interface: Literal["auto", "asgi3", "asgi2", "wsgi"] = "auto"
    strict_asgi: bool = False

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.port <= 65535:
            problems.append(f"port {self.port} is not between 0 and 65535")
        for name in ("timeout_keep_alive", "timeout_header", "timeout_graceful_shutdown"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be positive, not {getattr(self, name)}")
        if self.max_header_size < 256:
            problems.append(f"max_header_size {self.max_header_size} is under 256 bytes")
        if self.max_body_size is not None and self.max_body_size < 0:
            problems.append("max_body_size must not be negative")
        if self.limit_concurrency is not None and self.limit_concurrency < 1:
            problems.append("limit_concurrency must be at least 1")
        if self.loop not in ("auto", "uvloop", "asyncio"):
            problems.append(f"loop must be auto, uvloop or asyncio, not {self.loop!r}")
        if self.ws not in ("auto", "none", "websockets"):
            problems.append(f"ws must be auto, none or websockets, not {self.ws!r}")
        if self.ws_max_size < 1:
            problems.append("ws_max_size must be at least 1 byte")
        if self.interface not in ("auto", "asgi3", "asgi2", "wsgi"):
            problems.append(f"interface must be auto, asgi3, asgi2 or wsgi, not {self.interface!r}")
        if self.lifespan not in ("auto", "on", "off"):
            problems.append(f"lifespan must be auto, on or off, not {self.lifespan!r}")
        if self.root_path.endswith("/"):
            self.root_path = self.root_path.rstrip("/")
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def from_options(cls, app: Any, **options: Any) -> Config:
        """Build a Config from keyword options, naming any that are unknown."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"unknown server option(s): {', '.join(unknown)}")
        return cls(app=app, **options)

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
