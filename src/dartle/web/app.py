"""The application object: a Router plus middleware, error handlers and settings.

The middleware stack is built once, on the first event the app receives; after that
each call is `scope["app"] = self` and one await into the stack. With no middleware
the stack *is* the router.

The app also serves its own documentation (`dartle.web.openapi`): the OpenAPI document,
the AsyncAPI document of its WebSocket routes, and Swagger UI and ReDoc pages whose
assets ship inside the package. And it holds what typed handlers share: the
app-scoped dependency values (created in the lifespan) and `dependency_overrides`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from dartle.asgi.concurrency import set_thread_limit
from dartle.web.datastructures import State
from dartle.web.di import AppScope
from dartle.web.errors import ExceptionHandler, ServerErrorMiddleware
from dartle.web.formparsers import FormLimits
from dartle.web.functionmiddleware import (
    FunctionMiddleware,
    HTTPMiddleware,
    check_middleware_function,
)
from dartle.web.lifespan import Lifespan
from dartle.web.middleware import Middleware
from dartle.web.routes import BaseRoute, Endpoint, Host, Mount, Route, WebSocketRoute
from dartle.web.routing import E, Router, W
from dartle.web.types import ASGIApp, Receive, Scope, Send

__all__ = ["App"]

F = TypeVar("F", bound=Callable[..., Any])


class App:
    """A dartle application: an ASGI app that routes to your handlers.

    routes: initial routes (Route, WebSocketRoute, Mount, Host).
    middleware: `[Middleware(cls, **options), ...]`, the first listed outermost.
    lifespan: `lifespan(app)` returning an async context manager; what it yields
        becomes the lifespan state copied into each `request.state`.
    exception_handlers: `{ExceptionClass or status code: handler(request, exc)}`.
    debug: show tracebacks in 500 responses (never enable in production).
    thread_limit: size of the thread pool sync handlers run in (process-wide).
    form_limits: default `FormLimits` for `request.form()`.
    dependencies: dependencies every route runs (e.g. an auth check).

    Documentation (each URL may be None to turn that page off; without
    `openapi_url` there are no docs pages either):
    title, version, summary, description, openapi_tags, servers: the document's
        `info`, tag descriptions (`[{"name": ..., "description": ...}]`), servers.
    openapi_url: the OpenAPI 3.1 document, default "/openapi.json".
    asyncapi_url: the AsyncAPI 3.0 document of the WebSocket routes, "/asyncapi.json".
    docs_url: Swagger UI, "/docs". redoc_url: ReDoc, "/redoc".
    docs_assets_url: where their bundled scripts and styles are served, "/docs/assets".
    swagger_ui_parameters: extra `SwaggerUIBundle` options (JSON values).
    """

    def __init__(
        self,
        routes: Sequence[BaseRoute] | None = None,
        *,
        middleware: Sequence[Middleware] | None = None,
        lifespan: Lifespan | None = None,
        exception_handlers: dict[Any, ExceptionHandler] | None = None,
        debug: bool = False,
        on_startup: Sequence[Callable[[], Any]] | None = None,
        on_shutdown: Sequence[Callable[[], Any]] | None = None,
        redirect_slashes: bool = True,
        thread_limit: int | None = None,
        form_limits: FormLimits | None = None,
        dependencies: Sequence[Any] | None = None,
        title: str = "dartle",
        version: str = "0.1.0",
        summary: str | None = None,
        description: str | None = None,
        openapi_tags: Sequence[Mapping[str, Any]] | None = None,
        servers: Sequence[Mapping[str, Any]] | None = None,
        openapi_url: str | None = "/openapi.json",
        asyncapi_url: str | None = "/asyncapi.json",
        docs_url: str | None = "/docs",
        redoc_url: str | None = "/redoc",
        docs_assets_url: str = "/docs/assets",
        swagger_ui_parameters: Mapping[str, Any] | None = None,
    ) -> None:
        self.user_lifespan = lifespan
        self.router = Router(
            routes,
            redirect_slashes=redirect_slashes,
            dependencies=dependencies,
            lifespan=self._lifespan,
            on_startup=on_startup,
            on_shutdown=on_shutdown,
        )
        self.debug = debug
        self.exception_handlers: dict[Any, ExceptionHandler] = dict(exception_handlers or {})
        self.user_middleware: list[Middleware] = list(middleware or [])
        self.http_middleware: list[HTTPMiddleware] = []
        self.state = State()
        self.form_limits = form_limits
        if thread_limit is not None:
            set_thread_limit(thread_limit)
        self._stack: ASGIApp | None = None
        # Typed handlers: app-scoped dependency values, and replacements for tests.
        self.app_scope = AppScope()
        self.dependency_overrides: dict[Callable[..., Any], Callable[..., Any]] = {}
        self.title = title
        self.version = version
        self.summary = summary
        self.description = description
        self.openapi_tags = [dict(tag) for tag in openapi_tags or []]
        self.servers = [dict(server) for server in servers or []]
        self.openapi_url = openapi_url
        self.asyncapi_url = asyncapi_url
        self.docs_url = docs_url
        self.redoc_url = redoc_url
        self.docs_assets_url = docs_assets_url
        self.swagger_ui_parameters = dict(swagger_ui_parameters or {})
        self.openapi_schema: dict[str, Any] | None = None
        self.asyncapi_schema: dict[str, Any] | None = None
        if openapi_url is not None:
            from dartle.web.openapi.pages import install_docs

            install_docs(self)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Any) -> AsyncIterator[Mapping[str, Any] | None]:
        """App-scoped dependencies around the user's lifespan (created first, closed last)."""
        async with self.app_scope.running(self, self.app_dependency_calls()):
            if self.user_lifespan is None:
                yield None
            else:
                async with self.user_lifespan(app) as state:
                    yield state

    def app_dependency_calls(self) -> list[Callable[..., Any]]:
        """Every app-scoped dependency some route uses, in registration order."""
        found: dict[Callable[..., Any], None] = {}
        for _, route in self.iter_routes():
            typed = getattr(route, "typed", None)
            if typed is not None:
                for call in typed.plan.app_calls:
                    found.setdefault(call, None)
        return list(found)

    def iter_routes(self) -> Iterator[tuple[str, BaseRoute]]:
        """(path prefix, route) for every route, looking into mounted Routers."""
        yield from _walk(self.router.routes, "")

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document (built on first use; set `openapi_schema` to None to rebuild)."""
        if self.openapi_schema is None:
            from dartle.web.openapi.document import build_openapi

            self.openapi_schema = build_openapi(self)
        return self.openapi_schema

    def asyncapi(self) -> dict[str, Any]:
        """The AsyncAPI 3.0 document of the WebSocket routes (built on first use)."""
        if self.asyncapi_schema is None:
            from dartle.web.openapi.asyncapi import build_asyncapi

            self.asyncapi_schema = build_asyncapi(self)
        return self.asyncapi_schema

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self
        stack = self._stack
        if stack is None:
            stack = self.build_middleware_stack()
        await stack(scope, receive, send)

    def build_middleware_stack(self) -> ASGIApp:
        """Assemble (once) the app the server's events go through."""
        app: ASGIApp = self.router
        if self.http_middleware:
            app = FunctionMiddleware(self.router, self.http_middleware)
        for middleware in reversed(self.user_middleware):
            app = middleware.build(app)
        handlers = self.exception_handlers
        if self.user_middleware or self.debug or 500 in handlers or Exception in handlers:
            app = ServerErrorMiddleware(app)
        self._stack = app
        return app

    def _check_not_started(self, what: str) -> None:
        if self._stack is not None:
            raise RuntimeError(f"cannot add {what} after the application has started")

    # --- middleware and errors -------------------------------------------------

    def add_middleware(self, cls: Any, *args: Any, **kwargs: Any) -> None:
        """Wrap the app in `cls(app, *args, **kwargs)`; the last added is outermost."""
        self._check_not_started("middleware")
        self.user_middleware.insert(0, Middleware(cls, *args, **kwargs))

    def middleware(self, kind: str) -> Callable[[F], F]:
        """Decorator for `async def f(request, call_next) -> Response` (kind "http")."""
        if kind != "http":
            raise ValueError(f"only 'http' function middleware exists, not {kind!r}")

        def register(func: F) -> F:
            check_middleware_function(func)
            self._check_not_started("middleware")
            self.http_middleware.append(func)
            return func

        return register

    def add_exception_handler(self, key: int | type[BaseException], handler: ExceptionHandler) -> None:
        """Handle exceptions of class `key` (or HTTPExceptions with status `key`)."""
        self.exception_handlers[key] = handler

    def exception_handler(self, key: int | type[BaseException]) -> Callable[[F], F]:
        """Decorator form of `add_exception_handler`."""

        def register(func: F) -> F:
            self.add_exception_handler(key, func)
            return func

        return register

    # --- routes (delegated to the router) ---------------------------------------

    @property
    def routes(self) -> list[BaseRoute]:
        return self.router.routes

    def add_route(
        self, path: str, endpoint: Endpoint, methods: Sequence[str] | None = None, **options: Any
    ) -> Route:
        return self.router.add_route(path, endpoint, methods, **options)

    def add_websocket_route(
        self, path: str, endpoint: Callable[..., Awaitable[Any]], name: str | None = None, **options: Any
    ) -> WebSocketRoute:
        return self.router.add_websocket_route(path, endpoint, name, **options)

    def route(self, path: str, methods: Sequence[str] | None = None, **options: Any) -> Callable[[E], E]:
        return self.router.route(path, methods, **options)

    def get(self, path: str, **options: Any) -> Callable[[E], E]:
        return self.router.get(path, **options)

    def post(self, path: str, **options: Any) -> Callable[[E], E]:
        return self.router.post(path, **options)

    def put(self, path: str, **options: Any) -> Callable[[E], E]:
        return self.router.put(path, **options)

    def patch(self, path: str, **options: Any) -> Callable[[E], E]:
        return self.router.patch(path, **options)

    def delete(self, path: str, **options: Any) -> Callable[[E], E]:
        return self.router.delete(path, **options)

    def websocket(self, path: str, name: str | None = None, **options: Any) -> Callable[[W], W]:
        return self.router.websocket(path, name, **options)

    def include_router(self, router: Router, **options: Any) -> None:
        """Copy `router`'s routes in (`prefix=`, `tags=`, `dependencies=` add to them)."""
        self.router.include_router(router, **options)

    def mount(self, path: str, app: ASGIApp, name: str | None = None) -> Mount:
        """Serve any ASGI app (a Router, Starlette, Django...) under `path`."""
        return self.router.mount(path, app, name)

    def host(self, host: str, app: ASGIApp, name: str | None = None) -> Host:
        """Serve `app` for requests to `host` (may hold `{params}`)."""
        return self.router.host(host, app, name)

    def url_path_for(self, name: str, /, **params: Any) -> str:
        """The path of the route called `name`."""
        return self.router.url_path_for(name, **params)


def _walk(routes: Sequence[BaseRoute], prefix: str) -> Iterator[tuple[str, BaseRoute]]:
    for route in routes:
        if isinstance(route, Mount) and isinstance(route.app, Router):
            yield from _walk(route.app.routes, prefix + route.path)
        else:
            yield prefix, route
