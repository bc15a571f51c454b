"""ASGI middleware: each one wraps an app and is itself an ASGI app.

They are plain ASGI classes (no request/response objects in between), so streaming
responses stay streaming, context variables set by the app are seen by the server's
task, and background tasks run as they would without them.

`Middleware(cls, *args, **kwargs)` describes one to an `App`, which builds the stack
as `cls(app, *args, **kwargs)`, the first one listed outermost.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dartle.web.middleware.compression import GZipMiddleware
from dartle.web.middleware.cors import CORSMiddleware
from dartle.web.middleware.httpsredirect import HTTPSRedirectMiddleware
from dartle.web.middleware.sessions import SessionMiddleware
from dartle.web.middleware.trustedhost import TrustedHostMiddleware
from dartle.web.types import ASGIApp

__all__ = [
    "CORSMiddleware",
    "GZipMiddleware",
    "HTTPSRedirectMiddleware",
    "Middleware",
    "SessionMiddleware",
    "TrustedHostMiddleware",
]


class Middleware:
    """A middleware class with the arguments to build it around an app later."""

    __slots__ = ("args", "cls", "kwargs")

    def __init__(self, cls: Any, *args: Any, **kwargs: Any) -> None:
        self.cls = cls
        self.args = args
        self.kwargs = kwargs

    def build(self, app: ASGIApp) -> ASGIApp:
        """`cls(app, *args, **kwargs)`."""
        return self.cls(app, *self.args, **self.kwargs)  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[Any]:
        # Lets `cls, args, kwargs = middleware` unpack it, as Starlette's does.
        return iter((self.cls, self.args, self.kwargs))

    def __repr__(self) -> str:
        name = getattr(self.cls, "__name__", repr(self.cls))
        arguments = [repr(a) for a in self.args]
        arguments += [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"Middleware({', '.join([name, *arguments])})"
