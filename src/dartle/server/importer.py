"""Load `module:attribute` as an ASGI 3 application, with one-line errors that name the problem.

WSGI apps and legacy ASGI 2 apps are adapted (--interface, detected by default), and
--strict-asgi wraps the result in the ASGI conformance checker.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Any

from dartle.asgi.types import ASGIApp, Receive, Scope, Send


class AppLoadError(Exception):
    """The app could not be imported or is not an ASGI/WSGI callable; the message says which."""


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


INTERFACES = ("auto", "asgi3", "asgi2", "wsgi")


def load_app(
    target: Any,
    factory: bool = False,
    app_dir: str = ".",
    interface: str = "auto",
    strict: bool = False,
) -> ASGIApp:
    """Import (if a string), call the factory (if asked) and adapt the app to ASGI 3.

    interface (--interface): "auto" detects the kind of callable; "asgi3" takes the app
    as it is; "asgi2" wraps a legacy double callable `app(scope)(receive, send)`; "wsgi"
    serves a WSGI app `app(environ, start_response)` through `dartle.asgi.wsgi`.
    strict (--strict-asgi): put `dartle.asgi.validate`'s checker around the result, so
    every scope and event is checked against the ASGI specification.
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
    asgi_app = adapt(app, name, interface)
    if strict:
        from dartle.asgi.validate import StrictASGIMiddleware

        asgi_app = StrictASGIMiddleware(asgi_app)
    return asgi_app


def adapt(app: Any, name: str, interface: str = "auto") -> ASGIApp:
    """Return `app` as a single-callable ASGI 3 app, for the given (or detected) interface."""
    if interface not in INTERFACES:
        raise AppLoadError(f"interface must be one of {', '.join(INTERFACES)}, not {interface!r}")
    if not callable(app):
        raise AppLoadError(f"{name!r} is not an ASGI app: {type(app).__name__} is not callable")
    if interface == "auto":
        interface = detect_interface(app, name)
    if interface == "wsgi":
        if _is_async(app):
            raise AppLoadError(f"{name!r} is an async callable, not a WSGI app (--interface wsgi)")
        from dartle.asgi.wsgi import WSGIMiddleware

        return WSGIMiddleware(app)
    if interface == "asgi2":
        return _double_callable(app)
    return app  # type: ignore[no-any-return]


def detect_interface(app: Any, name: str) -> str:
    """"asgi3", "asgi2" or "wsgi", from how `app` is called; AppLoadError if none fits.

    An async `__call__`/function is ASGI 3; a class, or a sync callable of one argument,
    is a legacy ASGI 2 double callable; a sync callable of two arguments is WSGI
    `(environ, start_response)` (Flask, Django's WSGIHandler); three or more (or *args):
    ASGI 3 written as a sync function returning an awaitable.
    """
    if inspect.isclass(app):
        return "asgi2"
    if _is_async(app):
        return "asgi3"
    call = app if inspect.isfunction(app) or inspect.ismethod(app) else app.__call__
    try:
        parameters = inspect.signature(call).parameters.values()
    except (TypeError, ValueError):
        return "asgi3"  # a builtin or C callable: nothing to go by, trust the user
    if any(p.kind == p.VAR_POSITIONAL for p in parameters):
        return "asgi3"
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    if len(positional) >= 3 and len(required) <= 3:
        return "asgi3"
    if len(required) == 2 or (len(positional) == 2 and len(required) < 2):
        return "wsgi"
    if len(required) == 1 or (len(positional) == 1 and not required):
        return "asgi2"
    raise AppLoadError(
        f"{name!r} is not an ASGI or WSGI app: it takes {len(positional)} arguments, "
        "not (scope, receive, send) nor (environ, start_response)"
    )


def _is_async(app: Any) -> bool:
    call = getattr(app, "__call__", None)  # noqa: B004 - we want the method itself
    return inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(call)


def _double_callable(app: Any) -> ASGIApp:
    async def asgi3(scope: Scope, receive: Receive, send: Send) -> None:
        instance = app(scope)
        await instance(receive, send)

    return asgi3
