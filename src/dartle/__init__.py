"""dartle: an ASGI server and a typed web framework, each usable alone.

`dartle.run(app)` serves any ASGI app; `from dartle import App, Request, ...` gives the
framework (imported on first use, so the server alone never loads it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers see; at run time the framework loads on first use
    from dartle.web import *  # noqa: F403
    from dartle.web.staticfiles import StaticFiles as StaticFiles

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


def __getattr__(name: str) -> Any:
    if name == "StaticFiles":
        return importlib.import_module("dartle.web.staticfiles").StaticFiles
    web = importlib.import_module("dartle.web")
    if name in getattr(web, "__all__", ()):
        return getattr(web, name)
    raise AttributeError(f"module 'dartle' has no attribute {name!r}")
