"""The Router: an ordered list of routes, dispatched without scanning it.

Dispatch cost does not grow with the number of routes: paths without parameters are
found with one dict lookup (and win over parameterised paths and mounts); the rest
are matched by one combined regex per request method (see `paths.Matcher`), built on
first use and rebuilt when routes are added.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from dartle.web.errors import handle_exception
from dartle.web.exceptions import HTTPException
from dartle.web.lifespan import Lifespan, LifespanHooks, run_lifespan
from dartle.web.paths import Matcher, NoMatchFound, PathPattern, route_path
from dartle.web.requests import Request
from dartle.web.responses import RedirectResponse, Response
from dartle.web.routes import (
    BaseRoute,
    Endpoint,
    Host,
    Mount,
    Route,
    WebSocketRoute,
    join_prefix,
)
from dartle.web.types import ASGIApp, Receive, Scope, Send
from dartle.web.websockets import WebSocket

__all__ = [
    "BaseRoute",
    "Host",
    "Mount",
    "NoMatchFound",
    "Route",
    "Router",
    "WebSocketRoute",
]

E = TypeVar("E", bound=Callable[..., Any])
W = TypeVar("W", bound=Callable[..., Awaitable[Any]])

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


# A dispatch table: static paths, then a list of segments (a Matcher or a Host barrier).
Segment = Matcher[BaseRoute] | Host


class _Table:
    """The compiled form of a route list (rebuilt when the list changes).

    Static paths declared before any Host entry go in the `static` dicts; a Host is
    a barrier (it must be tried in its place), so static routes after one are
    matched in order with the rest.
    """

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.routes = list(routes)
        self.static: dict[str, dict[str, Route]] = {}
        self.static_ws: dict[str, WebSocketRoute] = {}
        fast: set[int] = set()
        for route in routes:
            if isinstance(route, Host):
                break
            if isinstance(route, Route) and route.pattern.is_static:
                by_method = self.static.setdefault(route.path, {})
                for method in route.methods:
                    by_method.setdefault(method, route)
                fast.add(id(route))
            elif isinstance(route, WebSocketRoute) and route.pattern.is_static:
                self.static_ws.setdefault(route.path, route)
                fast.add(id(route))
        self._fast = fast
        self._http: dict[str, list[Segment]] = {}
        self.websocket = self._segments(lambda r: isinstance(r, WebSocketRoute) and id(r) not in fast)

    def http(self, method: str) -> list[Segment]:
        """The segments for `method`, compiled on first use."""
        segments = self._http.get(method)
        if segments is None:
            fast = self._fast
            segments = self._segments(
                lambda r: isinstance(r, Route) and id(r) not in fast and method in r.methods
            )
            if method in HTTP_METHODS or len(self._http) < 64:
                # Arbitrary client-sent methods must not grow the cache without bound.
                self._http[method] = segments
        return segments

    def _segments(self, wanted: Callable[[BaseRoute], bool]) -> list[Segment]:
        segments: list[Segment] = []
        run: list[tuple[PathPattern, BaseRoute]] = []
        for route in self.routes:
            if isinstance(route, Host):
                if run:
                    segments.append(Matcher(run))
                    run = []
                segments.append(route)
            elif isinstance(route, Mount) or wanted(route):
                run.append((route.pattern, route))  # type: ignore[attr-defined]
        if run:
            segments.append(Matcher(run))
        return segments


def _resolve(router: Router, segments: list[Segment], scope: Scope, path: str) -> BaseRoute | None:
    """The entry for `path`, with `scope` updated for it (path params, mount root_path)."""
    for segment in segments:
        if isinstance(segment, Host):
            if segment.matches(scope):
                # url_for() inside the host's app must see the whole route tree.
                scope.setdefault("router", router)
                return segment
            continue
        found = segment.match(path)
        if found is not None:
            route, params, rest = found
            if isinstance(route, Mount):
                scope.setdefault("router", router)
                route.enter(scope, params, rest)
            elif params:
                existing = scope.get("path_params")
                scope["path_params"] = {**existing, **params} if existing else params
            return route
    return None


class Router:
    """An ordered list of routes, dispatched as described in the module docstring.

    `prefix`, `tags` and `dependencies` apply to routes registered through this
    router's decorators and `add_route`; `include_router` copies another router's
    routes in with its own prefix. A Router is an ASGI app: mount it, or serve it.
    """

    def __init__(
        self,
        routes: Sequence[BaseRoute] | None = None,
        *,
        prefix: str = "",
        tags: Sequence[str] | None = None,
        dependencies: Sequence[Any] | None = None,
        redirect_slashes: bool = True,
        lifespan: Lifespan | None = None,
        on_startup: Sequence[Callable[[], Any]] | None = None,
        on_shutdown: Sequence[Callable[[], Any]] | None = None,
    ) -> None:
        if prefix:
            join_prefix(prefix, "/")  # validates
        self.routes: list[BaseRoute] = list(routes or [])
        self.prefix = prefix
        self.tags: list[str] = list(tags or [])
        self.dependencies: list[Any] = list(dependencies or [])
        self.redirect_slashes = redirect_slashes
        self.lifespan_hooks = LifespanHooks(lifespan, on_startup, on_shutdown)
        self._table: _Table | None = None
        self._table_size = -1

    # --- registration ---------------------------------------------------------

    def add_route(
        self,
        path: str,
        endpoint: Endpoint,
        methods: Sequence[str] | None = None,
        name: str | None = None,
        *,
        tags: Sequence[str] | None = None,
        dependencies: Sequence[Any] | None = None,
        include_in_schema: bool = True,
        **options: Any,
    ) -> Route:
        """Register `endpoint` for `methods` at `prefix + path`.

        `options` are Route's: `response_model`, `status_code`, `response_class`,
        `summary`, `description`, `responses`, `operation_id`, `deprecated`...
        """
        route = Route(
            join_prefix(self.prefix, path),
            endpoint,
            methods=methods,
            name=name,
            tags=[*self.tags, *(tags or [])],
            dependencies=[*self.dependencies, *(dependencies or [])],
            include_in_schema=include_in_schema,
            **options,
        )
        self.routes.append(route)
        return route

    def add_websocket_route(
        self,
        path: str,
        endpoint: Callable[..., Awaitable[Any]],
        name: str | None = None,
        *,
        dependencies: Sequence[Any] | None = None,
        tags: Sequence[str] | None = None,
        **options: Any,
    ) -> WebSocketRoute:
        """Register a WebSocket `endpoint` at `prefix + path` (`options`: WebSocketRoute's)."""
        route = WebSocketRoute(
            join_prefix(self.prefix, path),
            endpoint,
            name=name,
            dependencies=[*self.dependencies, *(dependencies or [])],
            tags=[*self.tags, *(tags or [])],
            **options,
        )
        self.routes.append(route)
        return route

    def mount(self, path: str, app: ASGIApp, name: str | None = None) -> Mount:
        """Serve the ASGI `app` under `prefix + path`."""
        path = path.rstrip("/")
        mount = Mount(join_prefix(self.prefix, path) if path else self.prefix, app, name=name)
        self.routes.append(mount)
        return mount

    def host(self, host: str, app: ASGIApp, name: str | None = None) -> Host:
        """Serve the ASGI `app` for requests whose Host header matches `host`."""
        entry = Host(host, app, name=name)
        self.routes.append(entry)
        return entry

    def include_router(
        self,
        router: Router,
        *,
        prefix: str = "",
        tags: Sequence[str] | None = None,
        dependencies: Sequence[Any] | None = None,
    ) -> None:
        """Copy `router`'s routes in, under this router's prefix plus `prefix`."""
        full = join_prefix(self.prefix, prefix) if prefix else self.prefix
        extra_tags = [*self.tags, *(tags or [])]
        extra_deps = [*self.dependencies, *(dependencies or [])]
        for route in router.routes:
            if isinstance(route, Route):
                self.routes.append(route.with_prefix(full, extra_tags, extra_deps))
            elif isinstance(route, WebSocketRoute):
                self.routes.append(route.with_prefix(full, extra_deps, extra_tags))
            elif isinstance(route, Mount):
                self.routes.append(Mount(full + route.path, route.app, name=route.name))
            elif full:
                raise ValueError(f"cannot include {route!r} under a prefix")
            else:
                self.routes.append(route)
        self.lifespan_hooks.on_startup.extend(router.lifespan_hooks.on_startup)
        self.lifespan_hooks.on_shutdown.extend(router.lifespan_hooks.on_shutdown)

    def route(self, path: str, methods: Sequence[str] | None = None, **options: Any) -> Callable[[E], E]:
        """Decorator: `@router.route("/x", methods=["GET", "POST"])`."""

        def register(endpoint: E) -> E:
            self.add_route(path, endpoint, methods, **options)
            return endpoint

        return register

    def get(self, path: str, **options: Any) -> Callable[[E], E]:
        return self.route(path, ["GET"], **options)

    def post(self, path: str, **options: Any) -> Callable[[E], E]:
        return self.route(path, ["POST"], **options)

    def put(self, path: str, **options: Any) -> Callable[[E], E]:
        return self.route(path, ["PUT"], **options)

    def patch(self, path: str, **options: Any) -> Callable[[E], E]:
        return self.route(path, ["PATCH"], **options)

    def delete(self, path: str, **options: Any) -> Callable[[E], E]:
        return self.route(path, ["DELETE"], **options)

    def websocket(self, path: str, name: str | None = None, **options: Any) -> Callable[[W], W]:
        """Decorator for a WebSocket endpoint (`options`: WebSocketRoute's)."""

        def register(endpoint: W) -> W:
            self.add_websocket_route(path, endpoint, name, **options)
            return endpoint

        return register

    def url_path_for(self, name: str, /, **params: Any) -> str:
        """The path of the route called `name` (`"mount:route"` inside mounts)."""
        for route in self.routes:
            try:
                return route.url_path_for(name, **params)
            except NoMatchFound:
                continue
        raise NoMatchFound(name, params)

    # --- dispatch ---------------------------------------------------------------

    def _compiled(self) -> _Table:
        table = self._table
        if table is None or self._table_size != len(self.routes):
            table = self._table = _Table(self.routes)
            self._table_size = len(self.routes)
        return table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            root_path = scope.get("root_path")
            if root_path:
                path = route_path(path, root_path)
            table = self._table
            if table is None or self._table_size != len(self.routes):
                table = self._compiled()
            by_method = table.static.get(path)
            if by_method is not None:
                route = by_method.get(scope["method"])
                if route is not None:
                    await route.handle(scope, receive, send)
                    return
            found = _resolve(self, table.http(scope["method"]), scope, path)
            if found is None:
                response = await self._no_route(Request(scope, receive, send), path, table)
                await response(scope, receive, send)
                return
            await found.handle(scope, receive, send)  # type: ignore[attr-defined]
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await run_lifespan(self.lifespan_hooks, scope.get("app", self), scope, receive, send)
        else:
            raise RuntimeError(f"unsupported ASGI scope type {kind!r}")

    async def respond(self, request: Request) -> Response:
        """Route `request` and return its response unsent (for function middleware).

        Dartle routes return their Response object as is; a mounted ASGI app is run
        and its answer relayed as a streaming response.
        """
        scope = request.scope
        path = scope["path"]
        root_path = scope.get("root_path")
        if root_path:
            path = route_path(path, root_path)
        table = self._compiled()
        by_method = table.static.get(path)
        route: BaseRoute | None = None
        if by_method is not None:
            route = by_method.get(scope["method"])
        if route is None:
            route = _resolve(self, table.http(scope["method"]), scope, path)
            if route is None:
                return await self._no_route(request, path, table)
        if isinstance(route, Route):
            return await route.respond(request)
        assert isinstance(route, Mount | Host)
        if isinstance(route.app, Router):
            return await route.app.respond(request)
        from dartle.web.functionmiddleware import relay_response

        return await relay_response(route.app, request)

    async def _no_route(self, request: Request, path: str, table: _Table) -> Response:
        """404, 405 with Allow, or a redirect to the path with/without its slash."""
        allowed: set[str] = set()
        static = table.static.get(path)
        if static is not None:
            allowed.update(static)
        for route in table.routes:
            if isinstance(route, Route) and route.pattern.regex.match(path):
                allowed.update(route.methods)
        if allowed:
            exc = HTTPException(405, headers={"Allow": ", ".join(sorted(allowed))})
        else:
            if self.redirect_slashes and path != "/":
                other = path[:-1] if path.endswith("/") else path + "/"
                if self._path_exists(other, table):
                    url = request.url
                    target = url.path[:-1] if url.path.endswith("/") else url.path + "/"
                    return RedirectResponse(url.replace(path=target))
            exc = HTTPException(404)
        response, _ = await handle_exception(request, exc)
        return response

    @staticmethod
    def _path_exists(path: str, table: _Table) -> bool:
        if path in table.static:
            return True
        return any(
            isinstance(route, Route | Mount) and route.pattern.regex.match(path) for route in table.routes
        )

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        root_path = scope.get("root_path")
        if root_path:
            path = route_path(path, root_path)
        table = self._compiled()
        route = table.static_ws.get(path)
        if route is not None:
            await route.handle(scope, receive, send)
            return
        found = _resolve(self, table.websocket, scope, path)
        if found is None:
            websocket = WebSocket(scope, receive, send)
            response, _ = await handle_exception(websocket, HTTPException(404))
            await websocket.send_denial_response(response)
            return
        await found.handle(scope, receive, send)  # type: ignore[attr-defined]
