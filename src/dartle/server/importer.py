"""Load `module:attribute` as an ASGI application, with one-line errors that name the problem."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Any

from dartle.asgi.types import ASGIApp, Receive, Scope, Send


class AppLoadError(Exception):
    """The app could not be imported or is not an ASGI callable; the message says which."""


def import_from_string(target: str, app_dir: str = ".") -> Any:
    module_name, sep, attrs = target.partition(":")
    if not sep or not module_name or not attrs:
        raise AppLoadError(f"app {target!r} must be given as 'module:attribute', e.g. main:app")
    path = os.path.abspath(app_dir)
    if path not in sys.path:
        sys.path.insert(0, path)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise AppLoadError(f"could not import module {module_name!r}: {exc}") from exc
        raise AppLoadError(
            f"importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    except Exception as exc:
        raise AppLoadError(
            f"importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    obj: Any = module
    for attr in attrs.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise AppLoadError(f"module {module_name!r} has no attribute {attrs!r}") from None
    return obj


def load_app(
    target: Any,
    factory: bool = False,
    app_dir: str = ".",
    interface: str = "auto",
    strict: bool = False,
) -> ASGIApp:
    """Import (if a string), call the factory (if asked) and check the ASGI interface.

    `interface` and `strict` (--interface, --strict-asgi) are honoured by the WSGI bridge
    and the strict checker (dartle.asgi.wsgi, dartle.asgi.validate) once they exist.
    """
    name = target if isinstance(target, str) else getattr(target, "__qualname__", repr(target))
    app = import_from_string(target, app_dir) if isinstance(target, str) else target
    if factory:
        if not callable(app):
            raise AppLoadError(f"factory {name!r} is not callable")
        try:
            app = app()
        except Exception as exc:
            raise AppLoadError(f"factory {name!r} raised {type(exc).__name__}: {exc}") from exc
    return as_asgi3(app, name)


def as_asgi3(app: Any, name: str) -> ASGIApp:
    """Return `app` as a single-callable ASGI 3 app, wrapping legacy 2-callable apps."""
    if not callable(app):
        raise AppLoadError(f"{name!r} is not an ASGI app: {type(app).__name__} is not callable")
    if inspect.isclass(app):
        return _double_callable(app)
    call = app if inspect.isfunction(app) or inspect.ismethod(app) else app.__call__
    if inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(app):
        return app  # type: ignore[no-any-return]
    try:
        params = [
            p for p in inspect.signature(call).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return app  # type: ignore[no-any-return]
    if len(params) == 2 and [p.name for p in params][:1] == ["environ"]:
        raise AppLoadError(
            f"{name!r} looks like a WSGI app (environ, start_response), not an ASGI app"
        )
    if len(params) == 1:
        return _double_callable(app)
    if len(params) < 3 and not any(p.kind == p.VAR_POSITIONAL for p in
                                   inspect.signature(call).parameters.values()):
        raise AppLoadError(
            f"{name!r} is not an ASGI app: it takes {len(params)} arguments, "
            "not (scope, receive, send)"
        )
    return app  # type: ignore[no-any-return]


def _double_callable(app: Any) -> ASGIApp:
    async def asgi3(scope: Scope, receive: Receive, send: Send) -> None:
        instance = app(scope)
        await instance(receive, send)

    return asgi3
