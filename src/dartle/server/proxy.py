"""X-Forwarded-For / X-Forwarded-Proto from trusted proxies (--proxy-headers)."""

from __future__ import annotations

from typing import Any

from dartle.config import TrustedProxies

_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


def apply_forwarded(scope: Any, watched: dict[bytes, bytes], trusted: TrustedProxies) -> None:
    """Rewrite the scope's client and scheme from the proxy headers of a trusted peer.

    X-Forwarded-For is read from the right: the first address that is not itself a
    trusted proxy is the client, so a client cannot spoof its address by sending the
    header itself through a proxy that appends to it.
    """
    proto = watched.get(b"x-forwarded-proto")
    if proto is not None:
        value = proto.decode("latin-1").split(",")[-1].strip().lower()
        scheme = _SCHEMES.get(value)
        if scheme is not None:
            scope["scheme"] = scheme
    forwarded_for = watched.get(b"x-forwarded-for")
    if forwarded_for is not None:
        hosts = [h.strip() for h in forwarded_for.decode("latin-1").split(",") if h.strip()]
        if not hosts:
            return
        client = hosts[0]
        for host in reversed(hosts):
            if host not in trusted:
                client = host
                break
        scope["client"] = (client, 0)
