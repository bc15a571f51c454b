"""Dependencies: `Depends(callable)`, compiled once into a plan, run per request.

A handler asks for a value with `db: Session = Depends(get_db)` (or `Annotated[Session,
Depends(get_db)]`). A dependency takes parameters the same way a handler does (query,
headers, the body, other dependencies...), may be sync or async, and may be a generator:
the code after `yield` is its teardown.

At registration the whole tree is flattened into a `Plan`: an ordered list of nodes,
each dependency once (that *is* the per-request cache: `Depends(f)` asked for twice in
the tree is one node, unless `use_cache=False`). All their request parameters are merged
into the handler's validators. Per request the plan is a loop over nodes; nothing is
inspected.

Scopes:

- `Depends(f)` (request scope): called for each request. Generator teardown runs after
  the response has been sent; a dependency whose value is handed to a background task
  (`tasks.add_task(job, db)`) stays open until the background tasks have finished, the
  others are closed before they start. When the handler raises, teardown runs at once
  with the exception thrown in at the `yield`, before the error response is chosen (a
  dependency may turn it into an `HTTPException`).
- `Depends(f, scope="app")`: called once, when the app starts (its lifespan), and torn
  down when it stops; every request gets the same value. Its own parameters can only be
  other app-scoped dependencies or the `App`.

`app.dependency_overrides[original] = replacement` swaps a dependency (for tests);
the plan with the overrides applied is compiled on first use and kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
from collections.abc import AsyncGenerator, Callable, Generator, Iterable, Sequence
from typing import Any, Literal

from dartle.asgi.concurrency import is_async_callable, run_sync
from dartle.web.params import Declared, Special, analyze_signature, strip_annotated

__all__ = ["AppScope", "Depends", "Node", "Plan", "Security", "compile_plan"]

Scope = Literal["request", "app"]


class Depends:
    """Declare a dependency: `param: T = Depends(callable)`.

    `dependency=None` uses the parameter's annotation (a class) as the callable.
    `use_cache=False` calls it again even if the same request already did.
    `scope="app"` creates the value once per app (see the module docstring).
    """

    __slots__ = ("dependency", "scope", "use_cache")

    def __init__(
        self,
        dependency: Callable[..., Any] | None = None,
        *,
        use_cache: bool = True,
        scope: Scope = "request",
    ) -> None:
        if scope not in ("request", "app"):
            raise ValueError(f"a dependency's scope is 'request' or 'app', not {scope!r}")
        self.dependency = dependency
        self.use_cache = use_cache
        self.scope = scope

    @property
    def scopes(self) -> tuple[str, ...]:
        return ()

    def __repr__(self) -> str:
        name = getattr(self.dependency, "__qualname__", None) or repr(self.dependency)
        extra = "" if self.scope == "request" else f", scope={self.scope!r}"
        return f"{type(self).__name__}({name}{extra})"


class Security(Depends):
    """A dependency that also requires OAuth2 `scopes` (listed in the OpenAPI document
    and given to dependencies that take a `SecurityScopes` parameter)."""

    __slots__ = ("_scopes",)

    def __init__(
        self,
        dependency: Callable[..., Any] | None = None,
        *,
        scopes: Sequence[str] | None = None,
        use_cache: bool = True,
    ) -> None:
        super().__init__(dependency, use_cache=use_cache)
        self._scopes = tuple(scopes or ())

    @property
    def scopes(self) -> tuple[str, ...]:
        return self._scopes


# How a node is called.
PLAIN_SYNC, PLAIN_ASYNC, GEN_SYNC, GEN_ASYNC, APP_VALUE = range(5)
# Where an argument comes from.
ARG_SLOT, ARG_DEP, ARG_CONN, ARG_BACKGROUND, ARG_RESPONSE, ARG_APP, ARG_SCOPES = range(7)
_SPECIAL_ARGS = {
    "request": ARG_CONN,
    "websocket": ARG_CONN,
    "connection": ARG_CONN,
    "background": ARG_BACKGROUND,
    "response": ARG_RESPONSE,
    "app": ARG_APP,
    "scopes": ARG_SCOPES,
}


def call_mode(call: Callable[..., Any]) -> int:
    """How to call `call`: sync or async, plain or generator."""
    target = call
    if not (inspect.isfunction(target) or inspect.ismethod(target)) and not inspect.isclass(target):
        target = getattr(target, "__call__", target)  # noqa: B004
    target = inspect.unwrap(target)
    if inspect.isasyncgenfunction(target):
        return GEN_ASYNC
    if inspect.isgeneratorfunction(target):
        return GEN_SYNC
    return PLAIN_ASYNC if is_async_callable(call) else PLAIN_SYNC


@dataclasses.dataclass
class Node:
    """One call of the plan: the handler (last) or a dependency."""

    call: Callable[..., Any]
    mode: int
    args: list[tuple[str, int, Any]]  # (keyword, ARG_*, slot name / node index / None)
    declared: list[Declared]
    deps: list[int]  # indices of the nodes this one takes values from
    scopes: tuple[str, ...] = ()
    original: Callable[..., Any] | None = None  # before overrides

    @property
    def name(self) -> str:
        return getattr(self.call, "__qualname__", None) or type(self.call).__qualname__


class Plan:
    """The flattened dependency tree of one handler: nodes in call order, handler last.

    `declared` lists every request parameter of every node (the handler's own and its
    dependencies'), for the request reader and the OpenAPI document.
    """

    def __init__(self, nodes: list[Node]) -> None:
        self.nodes = nodes
        self.declared = [d for node in nodes for d in node.declared]
        self.has_generators = any(node.mode in (GEN_SYNC, GEN_ASYNC) for node in nodes)
        self.app_calls = [node.call for node in nodes if node.mode == APP_VALUE]
        self.endpoint = nodes[-1]
        # The handler is the only node: the common case, which needs no solve() loop.
        self.simple = len(nodes) == 1

    def bind_slots(self, slot_of: Callable[[Declared], str]) -> None:
        """Point every parameter argument at its slot in the request reader's output."""
        for node in self.nodes:
            by_name = {d.name: d for d in node.declared}
            node.args = [
                (name, kind, slot_of(by_name[name]) if kind == ARG_SLOT else key)
                for name, kind, key in node.args
            ]

    def security_nodes(self) -> list[Node]:
        from dartle.web.security import SecurityBase

        return [node for node in self.nodes if isinstance(node.call, SecurityBase)]


def compile_plan(
    endpoint: Callable[..., Any],
    path_names: Sequence[str],
    dependencies: Iterable[Any] = (),
    overrides: dict[Callable[..., Any], Callable[..., Any]] | None = None,
) -> tuple[Plan, Any]:
    """Flatten `endpoint` and its dependencies (route-level ones first) into a Plan.

    Returns the plan and the endpoint's return annotation. Raises TypeError for a
    cycle, a parameter no request can fill, or an app-scoped dependency that needs a
    request-scoped value.
    """
    compiler = _Compiler(path_names, overrides or {})
    for dependency in dependencies:
        marker = dependency if isinstance(dependency, Depends) else Depends(dependency)
        if marker.dependency is None or not callable(marker.dependency):
            raise TypeError(f"route dependency {dependency!r} is not a callable: give Depends(callable)")
        compiler.add(marker.dependency, marker, ())
    returned = compiler.add_endpoint(endpoint)
    return Plan(compiler.nodes), returned


class _Compiler:
    def __init__(
        self, path_names: Sequence[str], overrides: dict[Callable[..., Any], Callable[..., Any]]
    ) -> None:
        self.path_names = path_names
        self.overrides = overrides
        self.nodes: list[Node] = []
        self.cache: dict[Any, int] = {}
        self.stack: list[Callable[..., Any]] = []

    def add_endpoint(self, endpoint: Callable[..., Any]) -> Any:
        node, returned = self._build(endpoint, ())
        node.mode = PLAIN_ASYNC if is_async_callable(endpoint) else PLAIN_SYNC
        self.nodes.append(node)
        return returned

    def add(self, call: Callable[..., Any], marker: Depends, scopes: tuple[str, ...]) -> int:
        original = call
        app_scope = marker.scope == "app"
        if not app_scope:
            # App-scoped values are keyed by the original; AppScope applies overrides.
            call = self.overrides.get(call, call)
        scopes = (*scopes, *(s for s in marker.scopes if s not in scopes))
        key = (call, scopes, app_scope)
        if marker.use_cache and key in self.cache:
            return self.cache[key]
        if call in self.stack:
            chain = " -> ".join(getattr(c, "__qualname__", repr(c)) for c in [*self.stack, call])
            raise TypeError(f"dependency cycle: {chain}")
        if app_scope:
            node = Node(call, APP_VALUE, [], [], [], scopes, original)
            AppScope.check(call)
        else:
            self.stack.append(call)
            try:
                node, _ = self._build(call, scopes)
            finally:
                self.stack.pop()
            node.mode = call_mode(call)
            node.original = original
        index = len(self.nodes)
        self.nodes.append(node)
        if marker.use_cache:
            self.cache[key] = index
        return index

    def _build(self, call: Callable[..., Any], scopes: tuple[str, ...]) -> tuple[Node, Any]:
        analyzed, returned = analyze_signature(call, self.path_names)
        args: list[tuple[str, int, Any]] = []
        declared: list[Declared] = []
        deps: list[int] = []
        for item in analyzed:
            if isinstance(item, Declared):
                declared.append(item)
                args.append((item.name, ARG_SLOT, None))
            elif item.kind == "depends":
                index = self.add(_dependency_callable(item), item.depends, scopes)
                deps.append(index)
                args.append((item.name, ARG_DEP, index))
            else:
                args.append((item.name, _SPECIAL_ARGS[item.kind], None))
        return Node(call, PLAIN_ASYNC, args, declared, deps, scopes), returned


def _dependency_callable(item: Special) -> Callable[..., Any]:
    marker: Depends = item.depends
    if marker.dependency is not None:
        return marker.dependency
    annotation = strip_annotated(item.annotation)
    if not callable(annotation) or annotation is inspect.Parameter.empty:
        raise TypeError(f"Depends() for parameter {item.name!r} needs a callable or a class annotation")
    return annotation  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------
# Per request
# ---------------------------------------------------------------------------


class Teardown:
    """The open generator dependencies of one request, closed in reverse order."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: list[tuple[int, Any, bool, Any]] = []  # (node index, generator, is_async, value)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def split(self, plan: Plan, handed_over: set[int]) -> tuple[Teardown, Teardown]:
        """(close now, keep open): the kept ones are those whose value was handed to a
        background task (by identity), plus everything they depend on."""
        kept_nodes: set[int] = set()
        for index, _, _, value in self.entries:
            if id(value) in handed_over:
                _close_over(plan, index, kept_nodes)
        now, later = Teardown(), Teardown()
        for entry in self.entries:
            (later if entry[0] in kept_nodes else now).entries.append(entry)
        return now, later

    async def close(self, exc: BaseException | None = None) -> BaseException | None:
        """Run every teardown, newest first; returns the exception still standing.

        With `exc`, it is thrown into each generator at its `yield`. As with nested
        `with` blocks, a generator may re-raise it, raise another one (which the next
        generator then sees) or swallow it; a teardown raising without `exc` passes its
        exception on the same way.
        """
        entries, self.entries = self.entries, []
        pending = exc
        for _, gen, is_async, _ in reversed(entries):
            try:
                await _finish(gen, is_async, pending)
            except BaseException as error:
                pending = error
            else:
                pending = None
        return pending


def _close_over(plan: Plan, index: int, found: set[int]) -> None:
    if index in found:
        return
    found.add(index)
    for dep in plan.nodes[index].deps:
        _close_over(plan, dep, found)


async def _finish(gen: Any, is_async: bool, exc: BaseException | None) -> None:
    """Resume a dependency generator after its yield (throwing `exc` in, if any)."""
    if is_async:
        agen: AsyncGenerator[Any, None] = gen
        try:
            if exc is None:
                await agen.__anext__()
            else:
                await agen.athrow(exc)
        except StopAsyncIteration:
            return
        await agen.aclose()
        raise RuntimeError(f"dependency {_name(agen)} yielded more than once")
    sync: Generator[Any, None, None] = gen
    if exc is None:
        done, _ = await run_sync(_resume, sync)
    else:
        done, _ = await run_sync(_resume, sync, exc)
    if not done:
        sync.close()
        raise RuntimeError(f"dependency {_name(sync)} yielded more than once")


def _name(gen: Any) -> str:
    return str(getattr(gen, "__qualname__", gen))


def _resume(gen: Generator[Any, None, None], exc: BaseException | None = None) -> tuple[bool, Any]:
    """(finished, yielded value): StopIteration cannot cross the thread pool's Future."""
    try:
        value = next(gen) if exc is None else gen.throw(exc)
    except StopIteration:
        return True, None
    return False, value


async def start_generator(gen: Any, is_async: bool) -> Any:
    """Run a dependency generator up to its first yield; its value is the dependency's."""
    if is_async:
        try:
            return await gen.__anext__()
        except StopAsyncIteration:
            raise RuntimeError(f"dependency {_name(gen)} did not yield") from None
    done, value = await run_sync(_resume, gen)
    if done:
        raise RuntimeError(f"dependency {_name(gen)} did not yield")
    return value


# ---------------------------------------------------------------------------
# App scope
# ---------------------------------------------------------------------------


class AppScope:
    """The values of app-scoped dependencies, shared by every request of one app.

    `start()` (run in the app's lifespan) creates them; `close()` tears generators down,
    newest first. A value asked for before `start()` (a server running without the
    lifespan protocol) is created then, and torn down by `close()` if it ever runs.
    """

    def __init__(self) -> None:
        self.values: dict[Any, Any] = {}
        self._teardown = Teardown()
        self._lock: asyncio.Lock | None = None

    @staticmethod
    def check(call: Callable[..., Any]) -> None:
        """Refuse, at registration, an app-scoped dependency that needs a request."""
        analyzed, _ = analyze_signature(call, ())
        for item in analyzed:
            if isinstance(item, Declared):
                raise TypeError(
                    f"app-scoped dependency {getattr(call, '__qualname__', call)!r} cannot take the "
                    f"{item.source} parameter {item.name!r}: there is no request when it is created"
                )
            if item.kind == "depends":
                if item.depends.scope != "app":
                    raise TypeError(
                        f"app-scoped dependency {getattr(call, '__qualname__', call)!r} cannot depend on the "
                        f"request-scoped {item.depends!r}"
                    )
                AppScope.check(_dependency_callable(item))
            elif item.kind != "app":
                raise TypeError(
                    f"app-scoped dependency {getattr(call, '__qualname__', call)!r} cannot take "
                    f"{item.name!r} ({item.kind}): only other app-scoped dependencies and the App"
                )

    async def start(self, app: Any, calls: Iterable[Callable[..., Any]]) -> None:
        for call in calls:
            await self.get(call, app)

    async def get(self, call: Callable[..., Any], app: Any) -> Any:
        """The value of `call`, created on first use."""
        try:
            return self.values[call]
        except KeyError:
            pass
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            return await self._create(call, app, [])

    async def _create(self, call: Callable[..., Any], app: Any, stack: list[Any]) -> Any:
        if call in self.values:
            return self.values[call]
        overrides = getattr(app, "dependency_overrides", None) or {}
        target = overrides.get(call, call)
        analyzed, _ = analyze_signature(target, ())
        kwargs: dict[str, Any] = {}
        for item in analyzed:
            if isinstance(item, Special) and item.kind == "depends":
                kwargs[item.name] = await self._create(_dependency_callable(item), app, [*stack, call])
            elif isinstance(item, Special) and item.kind == "app":
                kwargs[item.name] = app
        mode = call_mode(target)
        if mode in (GEN_ASYNC, GEN_SYNC):
            gen = target(**kwargs)
            value = await start_generator(gen, mode == GEN_ASYNC)
            self._teardown.entries.append((len(self._teardown.entries), gen, mode == GEN_ASYNC, value))
        elif mode == PLAIN_ASYNC:
            value = await target(**kwargs)
        else:
            value = await run_sync(target, **kwargs)
        self.values[call] = value
        return value

    async def close(self) -> None:
        """Tear app-scoped generators down (newest first) and forget every value."""
        self.values.clear()
        error = await self._teardown.close()
        if error is not None:
            raise error

    @contextlib.asynccontextmanager
    async def running(self, app: Any, calls: Iterable[Callable[..., Any]]) -> Any:
        """Create the values on entry, tear them down on exit (the lifespan wraps this)."""
        try:
            await self.start(app, calls)
            yield
        finally:
            await self.close()


# ---------------------------------------------------------------------------
# Running a plan
# ---------------------------------------------------------------------------


class RequestState:
    """What one request's plan run creates besides values: the background tasks and the
    header-carrying response handed to parameters, and the open generators."""

    __slots__ = ("background", "response", "teardown")

    def __init__(self) -> None:
        self.background: Any = None
        self.response: Any = None
        self.teardown = Teardown()


async def solve(plan: Plan, conn: Any, values: dict[str, Any], state: RequestState) -> Any:
    """Call every node of `plan` in order; return the handler's result."""
    nodes = plan.nodes
    results: list[Any] = [None] * len(nodes)
    app_scope: AppScope | None = None
    for index, node in enumerate(nodes):
        mode = node.mode
        if mode == APP_VALUE:
            if app_scope is None:
                app_scope = app_scope_of(conn.scope.get("app"))
            value = app_scope.values.get(node.call, _MISSING)
            if value is _MISSING:
                value = await app_scope.get(node.call, conn.scope.get("app"))
            results[index] = value
            continue
        kwargs: dict[str, Any] = {}
        for name, kind, key in node.args:
            if kind == ARG_SLOT:
                kwargs[name] = values[key]
            elif kind == ARG_DEP:
                kwargs[name] = results[key]
            elif kind == ARG_CONN:
                kwargs[name] = conn
            elif kind == ARG_BACKGROUND:
                if state.background is None:
                    from dartle.web.background import BackgroundTasks

                    state.background = BackgroundTasks()
                kwargs[name] = state.background
            elif kind == ARG_RESPONSE:
                if state.response is None:
                    state.response = header_carrier()
                kwargs[name] = state.response
            elif kind == ARG_APP:
                kwargs[name] = conn.scope.get("app")
            else:
                from dartle.web.security import SecurityScopes

                kwargs[name] = SecurityScopes(node.scopes)
        call = node.call
        if mode == PLAIN_ASYNC:
            results[index] = await call(**kwargs)
        elif mode == PLAIN_SYNC:
            results[index] = await run_sync(call, **kwargs)
        else:
            gen = call(**kwargs)
            value = await start_generator(gen, mode == GEN_ASYNC)
            state.teardown.entries.append((index, gen, mode == GEN_ASYNC, value))
            results[index] = value
    return results[-1]


_MISSING: Any = object()
_DEFAULT_SCOPE = AppScope()


def app_scope_of(app: Any) -> AppScope:
    """The AppScope of `app` (a Router served without an App shares a process-wide one)."""
    scope = getattr(app, "app_scope", None)
    return scope if isinstance(scope, AppScope) else _DEFAULT_SCOPE


def header_carrier() -> Any:
    """A Response a handler sets headers, cookies and a status on (merged into its answer)."""
    from dartle.web.responses import Response

    carrier = Response()
    carrier.raw_headers.clear()
    carrier.status_code = 0  # unset
    return carrier
