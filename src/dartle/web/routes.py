"""The entries of a Router: Route, WebSocketRoute, Mount and Host.

Each `Route` builds `self.call`, its endpoint caller, once at registration. An
old-style `handler(request)` is called with the `Request` and its return value becomes
a `Response`; any other signature is compiled by `dartle.web.endpoint` (typed
parameters, dependencies, response model) into `route.typed`, which is then the
caller. Dispatch does not know the difference.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from dartle.asgi.concurrency import is_async_callable, run_sync
from dartle.web.endpoint import (
    AfterResponse,
    HTTPEndpoint,
    WebSocketEndpoint,
    is_plain_endpoint,
    response_model_of,
)
from dartle.web.errors import handle_exception
from dartle.web.exceptions import HTTPException, WebSocketDisconnect, WebSocketException
from dartle.web.params import UNSET, resolve_hints
from dartle.web.paths import NoMatchFound, PathPattern, route_path
from dartle.web.requests import Request
from dartle.web.responses import Response, render_value
from dartle.web.types import ASGIApp, Receive, Scope, Send
from dartle.web.websockets import INTERNAL_ERROR, WebSocket, WebSocketState

__all__ = [
    "BaseRoute",
    "Endpoint",
    "EndpointCaller",
    "Host",
    "Mount",
    "Route",
    "WebSocketRoute",
    "join_prefix",
]

# A handler: `handler(request)`, or any signature `dartle.web.endpoint` can compile.
Endpoint = Callable[..., Any]
# Awaited with the request, it gives the handler's return value: a Response, or a plain
# value that `_as_response` turns into one.
EndpointCaller = Callable[[Request], Awaitable[Any]]


def _build_caller(endpoint: Callable[..., Any]) -> EndpointCaller:
    """Call the handler with the request: an async handler is its own caller (no wrapping
    coroutine per request); a sync one runs in the thread pool."""
    if is_async_callable(endpoint):
        return endpoint

    async def call(request: Request) -> Any:
        return await run_sync(endpoint, request)

    return call


def _as_response(result: Any) -> Response:
    return result if isinstance(result, Response) else render_value(result)


def join_prefix(prefix: str, path: str) -> str:
    if not prefix:
        return path
    if not prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError(f"a prefix must start with '/' and not end with '/': {prefix!r}")
    return prefix + path


class BaseRoute:
    """What Router entries share: a name and a way back from name to path."""

    name: str | None = None

    def url_path_for(self, name: str, /, **params: Any) -> str:
        raise NoMatchFound(name, params)


def _is_legacy(endpoint: Callable[..., Any], dependencies: Sequence[Any], options: dict[str, Any]) -> bool:
    """Whether `endpoint(request)` can be called as is: nothing typed about it."""
    if dependencies or not is_plain_endpoint(endpoint):
        return False
    if any(options.get(k) is not None for k in ("status_code", "response_class")):
        return False
    if options.get("response_model", UNSET) is not UNSET:
        return False
    try:
        _, hints = resolve_hints(endpoint)
    except TypeError:
        return True
    return response_model_of(hints.get("return")) is None


# Route options that shape the typed caller; the others only document the operation.
_CALLER_OPTIONS = (
    "response_model",
    "status_code",
    "response_class",
    "response_model_exclude_none",
    "response_model_exclude_unset",
)


class Route(BaseRoute):
    """An HTTP endpoint at a path template, for some methods (GET by default).

    GET routes answer HEAD too. `dependencies` run before the handler (their values
    are dropped); `tags` and the documentation options (`summary`, `description`,
    `responses`, `operation_id`, `deprecated`, `response_description`,
    `openapi_extra`) go to the OpenAPI document. `response_model`, `status_code` and
    `response_class` shape how the return value is sent (see `dartle.web.endpoint`).
    """

    def __init__(
        self,
        path: str,
        endpoint: Endpoint,
        *,
        methods: Sequence[str] | None = None,
        name: str | None = None,
        tags: Sequence[str] | None = None,
        dependencies: Sequence[Any] | None = None,
        include_in_schema: bool = True,
        response_model: Any = UNSET,
        status_code: int | None = None,
        response_class: type[Response] | None = None,
        response_model_exclude_none: bool = False,
        response_model_exclude_unset: bool = False,
        summary: str | None = None,
        description: str | None = None,
        responses: dict[int | str, dict[str, Any]] | None = None,
        operation_id: str | None = None,
        deprecated: bool | None = None,
        response_description: str = "Successful Response",
        openapi_extra: dict[str, Any] | None = None,
    ) -> None:
        self.path = path
        self.endpoint = endpoint
        self.pattern = PathPattern(path)
        if methods is None:
            methods = ["GET"]
        upper = {m.upper() for m in methods}
        if "GET" in upper:
            upper.add("HEAD")
        self.methods: frozenset[str] = frozenset(upper)
        self.name = name if name is not None else getattr(endpoint, "__name__", None)
        self.tags: list[str] = list(tags or [])
        self.dependencies: list[Any] = list(dependencies or [])
        self.include_in_schema = include_in_schema
        self.options: dict[str, Any] = {
            "response_model": response_model,
            "status_code": status_code,
            "response_class": response_class,
            "response_model_exclude_none": response_model_exclude_none,
            "response_model_exclude_unset": response_model_exclude_unset,
            "summary": summary,
            "description": description,
            "responses": responses,
            "operation_id": operation_id,
            "deprecated": deprecated,
            "response_description": response_description,
            "openapi_extra": openapi_extra,
        }
        self.typed: HTTPEndpoint | None = None
        if _is_legacy(endpoint, self.dependencies, self.options):
            self.call: EndpointCaller = _build_caller(endpoint)
        else:
            self.typed = HTTPEndpoint(
                endpoint,
                self.pattern.names,
                self.dependencies,
                **{k: self.options[k] for k in _CALLER_OPTIONS},
            )
            self.call = self.typed
            if self.typed.needs_cleanup:
                self.handle = self._handle_with_cleanup  # type: ignore[method-assign]

    def with_prefix(self, prefix: str, tags: Sequence[str] = (), dependencies: Sequence[Any] = ()) -> Route:
        """A copy under `prefix`, with extra tags and dependencies in front."""
        return Route(
            join_prefix(prefix, self.path),
            self.endpoint,
            methods=sorted(self.methods),
            name=self.name,
            tags=[*tags, *(t for t in self.tags if t not in tags)],
            dependencies=[*dependencies, *self.dependencies],
            include_in_schema=self.include_in_schema,
            **self.options,
        )

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the endpoint and send its response (errors become error responses)."""
        scope["route"] = self
        request = Request(scope, receive, send)
        try:
            response = _as_response(await self.call(request))
        except Exception as exc:
            response, server_error = await handle_exception(request, exc)
            await response(scope, receive, send)
            if server_error:
                raise
            return
        await response(scope, receive, send)

    async def _handle_with_cleanup(self, scope: Scope, receive: Receive, send: Send) -> None:
        """`handle` for handlers with teardown: it runs even if the response never
        reached its background (a client gone mid-stream, an error while sending)."""
        scope["route"] = self
        request = Request(scope, receive, send)
        try:
            response = _as_response(await self.call(request))
        except Exception as exc:
            response, server_error = await handle_exception(request, exc)
            await response(scope, receive, send)
            if server_error:
                raise
            return
        try:
            await response(scope, receive, send)
        finally:
            after = response.background
            if isinstance(after, AfterResponse):
                await after.finish()

    async def respond(self, request: Request) -> Response:
        """The endpoint's response, unsent (handled errors become responses)."""
        request.scope["route"] = self
        try:
            return _as_response(await self.call(request))
        except Exception as exc:
            response, server_error = await handle_exception(request, exc)
            if server_error:
                raise
            return response

    def url_path_for(self, name: str, /, **params: Any) -> str:
        if name != self.name or set(params) != set(self.pattern.names):
            raise NoMatchFound(name, params)
        return self.pattern.build(params)

    def __repr__(self) -> str:
        return f"Route({self.path!r}, methods={sorted(self.methods)}, name={self.name!r})"


class WebSocketRoute(BaseRoute):
    """A WebSocket endpoint: `endpoint(websocket)` runs for each connection.

    Like HTTP handlers, it may take typed path, query, header and cookie parameters
    and dependencies. `receives` and `sends` (types of the messages each way),
    `summary`, `description`, `tags` and `include_in_schema` document it in the
    AsyncAPI document.
    """

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Awaitable[Any]],
        *,
        name: str | None = None,
        dependencies: Sequence[Any] | None = None,
        tags: Sequence[str] | None = None,
        include_in_schema: bool = True,
        summary: str | None = None,
        description: str | None = None,
        receives: Any = None,
        sends: Any = None,
    ) -> None:
        if not is_async_callable(endpoint):
            raise TypeError("a WebSocket endpoint must be an async function")
        self.path = path
        self.endpoint = endpoint
        self.pattern = PathPattern(path)
        self.name = name if name is not None else getattr(endpoint, "__name__", None)
        self.dependencies: list[Any] = list(dependencies or [])
        self.tags: list[str] = list(tags or [])
        self.include_in_schema = include_in_schema
        self.options: dict[str, Any] = {
            "summary": summary,
            "description": description,
            "receives": receives,
            "sends": sends,
        }
        self.typed: WebSocketEndpoint | None = None
        if self.dependencies or not is_plain_endpoint(endpoint):
            self.typed = WebSocketEndpoint(endpoint, self.pattern.names, self.dependencies)
            self.call: Callable[[WebSocket], Awaitable[Any]] = self.typed
        else:
            self.call = endpoint

    def with_prefix(
        self, prefix: str, dependencies: Sequence[Any] = (), tags: Sequence[str] = ()
    ) -> WebSocketRoute:
        return WebSocketRoute(
            join_prefix(prefix, self.path),
            self.endpoint,
            name=self.name,
            dependencies=[*dependencies, *self.dependencies],
            tags=[*tags, *(t for t in self.tags if t not in tags)],
            include_in_schema=self.include_in_schema,
            **self.options,
        )

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self
        websocket = WebSocket(scope, receive, send)
        try:
            await self.call(websocket)
        except WebSocketDisconnect:
            return
        except Exception as exc:
            await _websocket_error(websocket, exc)

    def url_path_for(self, name: str, /, **params: Any) -> str:
        if name != self.name or set(params) != set(self.pattern.names):
            raise NoMatchFound(name, params)
        return self.pattern.build(params)

    def __repr__(self) -> str:
        return f"WebSocketRoute({self.path!r}, name={self.name!r})"


async def _websocket_error(websocket: WebSocket, exc: Exception) -> None:
    """Close `websocket` as `exc` asks; re-raise what nobody handles (it gets logged)."""
    state = websocket.application_state
    handlers = getattr(websocket.app, "exception_handlers", None) or {}
    for cls in type(exc).__mro__:
        handler = handlers.get(cls)
        if handler is not None and cls is not Exception:
            result = handler(websocket, exc)
            if isinstance(result, Awaitable):
                await result
            return
    if state is WebSocketState.DISCONNECTED or state is WebSocketState.RESPONSE:
        if isinstance(exc, WebSocketException | HTTPException):
            return
        raise exc
    if isinstance(exc, WebSocketException):
        await websocket.close(exc.code, exc.reason)
        return
    if isinstance(exc, HTTPException) and state is WebSocketState.CONNECTING:
        response, _ = await handle_exception(websocket, exc)
        await websocket.send_denial_response(response)
        return
    if state is WebSocketState.CONNECTED:
        await websocket.close(INTERNAL_ERROR, "Internal error")
    raise exc


class Mount(BaseRoute):
    """Another ASGI app (a Router, a dartle App, Starlette, Django...) under a prefix.

    The mounted app sees the full path in `scope["path"]` and the prefix added to
    `scope["root_path"]`, the convention uvicorn and Starlette follow.
    """

    def __init__(
        self,
        path: str,
        app: ASGIApp | None = None,
        *,
        routes: Sequence[BaseRoute] | None = None,
        name: str | None = None,
    ) -> None:
        path = path.rstrip("/")
        if path and not path.startswith("/"):
            raise ValueError(f"a mount path must start with '/': {path!r}")
        if (app is None) == (routes is None):
            raise TypeError("give a Mount either 'app' or 'routes'")
        self.path = path
        if app is None:
            from dartle.web.routing import Router

            app = Router(routes)
        self.app: ASGIApp = app
        self.name = name
        self.pattern = PathPattern(path, prefix=True)

    @property
    def routes(self) -> list[BaseRoute]:
        return list(getattr(self.app, "routes", []))

    def enter(self, scope: Scope, params: dict[str, Any], rest: str | None) -> None:
        """Rewrite `scope` for the mounted app: path params, root_path."""
        rest = rest or ""
        if params:
            existing = scope.get("path_params")
            scope["path_params"] = {**existing, **params} if existing else params
        root_path = scope.get("root_path", "")
        path = scope["path"]
        local = route_path(path, root_path) if root_path else path
        prefix = local[: len(local) - len(rest)] if rest else local
        scope.setdefault("app_root_path", root_path)
        scope["root_path"] = root_path + prefix

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def url_path_for(self, name: str, /, **params: Any) -> str:
        names = self.pattern.names
        own = {k: v for k, v in params.items() if k in names}
        rest = {k: v for k, v in params.items() if k not in names}
        if len(own) != len(names):
            raise NoMatchFound(name, params)
        if self.name is not None:
            if name == self.name and not rest:
                return self.pattern.build(own) + "/"
            if not name.startswith(self.name + ":"):
                raise NoMatchFound(name, params)
            name = name[len(self.name) + 1 :]
        finder = getattr(self.app, "url_path_for", None)
        if finder is None:
            raise NoMatchFound(name, params)
        return self.pattern.build(own) + finder(name, **rest)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"Mount({self.path!r}, app={self.app!r}, name={self.name!r})"


class Host(BaseRoute):
    """Route by the Host header: `Host("{tenant}.example.com", app)`."""

    def __init__(self, host: str, app: ASGIApp, *, name: str | None = None) -> None:
        self.host = host
        self.app = app
        self.name = name
        # Host parameters match one label; a path-like pattern is reused for parsing.
        self.pattern = PathPattern("/" + host, segment_regex=r"[^./]+")

    def matches(self, scope: Scope) -> bool:
        host = ""
        for key, value in scope["headers"]:
            if key == b"host":
                host = value.decode("latin-1")
                break
        # Drop the port; an IPv6 literal keeps its brackets.
        host = host[: host.find("]") + 1] if host.startswith("[") else host.split(":", 1)[0]
        values = self.pattern.match("/" + host.lower())
        if values is None:
            return False
        if values:
            params = self.pattern.params(values)
            existing = scope.get("path_params")
            scope["path_params"] = {**existing, **params} if existing else params
        return True

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def url_path_for(self, name: str, /, **params: Any) -> str:
        rest = {k: v for k, v in params.items() if k not in self.pattern.names}
        if self.name is not None:
            if not name.startswith(self.name + ":"):
                raise NoMatchFound(name, params)
            name = name[len(self.name) + 1 :]
        finder = getattr(self.app, "url_path_for", None)
        if finder is None:
            raise NoMatchFound(name, params)
        return finder(name, **rest)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"Host({self.host!r}, app={self.app!r}, name={self.name!r})"
