"""dartle: an ASGI server and a typed web framework, each usable alone."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def run(app: Any, **options: Any) -> None:
    """Serve `app` (an ASGI callable or "module:attribute") until interrupted.

    Options are `dartle run`'s flags with underscores: ``dartle.run(app, port=8080)``.
    Exits the process with the server's status when it is not 0 (as on startup failure).
    """
    from dartle.cli import run_config

    code = run_config(app, options)
    if code:
        raise SystemExit(code)
