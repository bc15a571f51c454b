"""A typed handler compiled into its Route's caller: read, solve, call, render, clean up.

`HTTPEndpoint(route options)` is built once at registration from the handler's
signature: its dependency plan (`di`), its request reader (`extract`) and its response
renderer. Calling it with a Request runs them in that order and returns the Response.

The return value becomes the response this way:

- a `Response` is passed through untouched (only the background tasks and headers the
  handler gave through its parameters are added);
- with a response model (`response_model=`, else the return annotation) the value is
  validated against the model and serialised straight to JSON bytes by pydantic-core;
  a value that does not fit is a server error (500), not the client's;
- without one, as before: str is text/plain, bytes application/octet-stream, anything
  else JSON (or `response_class(value)` when the route names one).
"""

from __future__ import annotations

import collections.abc
import inspect
import typing
from collections.abc import Callable, Sequence
from typing import Any, get_args, get_origin

from pydantic import TypeAdapter, ValidationError

from dartle.web.background import BackgroundTask, BackgroundTasks
from dartle.web.di import (
    ARG_CONN,
    ARG_SLOT,
    PLAIN_ASYNC,
    Plan,
    RequestState,
    Teardown,
    compile_plan,
    solve,
)
from dartle.web.extract import RequestReader, error_list
from dartle.web.params import UNSET, strip_annotated
from dartle.web.requests import HTTPConnection, Request
from dartle.web.responses import JSONResponse, PlainTextResponse, Response
from dartle.web.websockets import WebSocket

__all__ = [
    "HTTPEndpoint",
    "ResponseValidationError",
    "WebSocketEndpoint",
    "is_plain_endpoint",
    "response_model_of",
]

_BODYLESS = frozenset({204, 304})
_NOT_MODELS: tuple[Any, ...] = (
    inspect.Signature.empty,
    None,
    type(None),
    Any,
    object,
    str,
    bytes,
)
_ITERATOR_ORIGINS: tuple[Any, ...] = (
    collections.abc.Iterator,
    collections.abc.AsyncIterator,
    collections.abc.Iterable,
    collections.abc.AsyncIterable,
    collections.abc.Generator,
    collections.abc.AsyncGenerator,
    collections.abc.Awaitable,
    collections.abc.Coroutine,
)


class ResponseValidationError(Exception):
    """A handler returned a value its response model rejects (a server error: 500)."""

    def __init__(self, errors: list[dict[str, Any]], where: str) -> None:
        super().__init__(f"the return value of {where} does not match its response model: {errors}")
        self.errors = errors


def response_model_of(annotation: Any) -> Any:
    """The response model a return annotation implies, or None (no validation).

    Responses, str/bytes (rendered as text and octet-stream), None, Any and iterators
    imply none.
    """
    base = strip_annotated(annotation)
    if any(base is t for t in _NOT_MODELS) or isinstance(base, typing.TypeVar):
        return None
    if inspect.isclass(base) and issubclass(base, Response):
        return None
    origin = get_origin(base)
    if origin in _ITERATOR_ORIGINS:
        return None
    if any(inspect.isclass(arg) and issubclass(arg, Response) for arg in get_args(base)):
        return None
    return annotation


def is_plain_endpoint(endpoint: Callable[..., Any]) -> bool:
    """Whether `endpoint` is an old-style `handler(request)` with nothing to compile."""
    try:
        parameters = list(inspect.signature(endpoint).parameters.values())
    except (TypeError, ValueError):
        return True
    if len(parameters) != 1:
        return False
    parameter = parameters[0]
    if parameter.default is not inspect.Parameter.empty or parameter.kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        return False
    annotation = parameter.annotation
    if annotation is inspect.Parameter.empty:
        return True  # Starlette style: the one positional parameter is the connection
    if isinstance(annotation, str):
        return annotation.rsplit(".", 1)[-1] in ("Request", "WebSocket", "HTTPConnection")
    return inspect.isclass(annotation) and issubclass(annotation, HTTPConnection)


class _Renderer:
    """A return value -> Response, as the module docstring says."""

    def __init__(
        self,
        model: Any,
        status_code: int | None,
        response_class: type[Response] | None,
        where: str,
        exclude_none: bool,
        exclude_unset: bool,
    ) -> None:
        self.where = where
        self.status_code = status_code if status_code is not None else 200
        self.response_class = response_class
        self.model = model
        self.adapter: TypeAdapter[Any] | None = None
        if model is not None:
            try:
                self.adapter = TypeAdapter(model)
            except Exception as exc:
                raise TypeError(
                    f"{where}: {model!r} cannot be a response model ({exc}); "
                    "pass response_model=None to return it unvalidated"
                ) from exc
            self.validator = self.adapter.validator
            self.serializer = self.adapter.serializer
        self.exclude_none = exclude_none
        self.exclude_unset = exclude_unset
        media = getattr(response_class, "media_type", None) if response_class is not None else None
        self.media_type = media or "application/json"

    def __call__(self, result: Any) -> Response:
        if isinstance(result, Response):
            return result
        status = self.status_code
        if self.adapter is not None:
            try:
                value = self.validator.validate_python(result, from_attributes=True)
            except ValidationError as exc:
                raise ResponseValidationError(error_list(exc, ("response",)), self.where) from None
            if status in _BODYLESS or status < 200:
                return Response(status_code=status)
            body = self.serializer.to_json(
                value, by_alias=True, exclude_none=self.exclude_none, exclude_unset=self.exclude_unset
            )
            return Response(body, status, media_type=self.media_type)
        if status in _BODYLESS or status < 200:
            return Response(status_code=status)
        if self.response_class is not None:
            return self.response_class(result, status_code=status)
        if isinstance(result, str):
            return PlainTextResponse(result, status)
        if isinstance(result, bytes):
            return Response(result, status, media_type="application/octet-stream")
        return JSONResponse(result, status)


class AfterResponse(BackgroundTask):
    """The response's background once a handler has cleanup to do.

    When the response has been sent: close the dependencies no background task needs,
    run the background tasks, close the rest, close uploaded files. `finish()` is the
    safety net the route calls after sending (the response may not have run its
    background: a client that left mid-stream).
    """

    __slots__ = ("done", "original", "plan", "request", "teardown")

    def __init__(self, plan: Plan, teardown: Teardown, original: Any, request: Request | None) -> None:
        self.plan = plan
        self.teardown = teardown
        self.original = original
        self.request = request
        self.done = False

    async def __call__(self) -> None:
        if self.done:
            return
        self.done = True
        original = self.original
        try:
            if original is None:
                error = await self.teardown.close()
            else:
                now, later = self.teardown.split(self.plan, _handed_over(original))
                error = await now.close()
                try:
                    await original()
                finally:
                    error = await later.close() or error
        finally:
            if self.request is not None:
                await self.request.close()
        if error is not None:
            raise error

    async def finish(self) -> None:
        if not self.done:
            self.done = True
            try:
                error = await self.teardown.close()
            finally:
                if self.request is not None:
                    await self.request.close()
            if error is not None:
                raise error


def _handed_over(background: Any) -> set[int]:
    """ids of every argument given to the background task(s)."""
    found: set[int] = set()
    tasks = background.tasks if isinstance(background, BackgroundTasks) else [background]
    for task in tasks:
        if isinstance(task, BackgroundTasks):
            found |= _handed_over(task)
            continue
        for value in (*getattr(task, "args", ()), *getattr(task, "kwargs", {}).values()):
            found.add(id(value))
    return found


def _merge_background(response: Response, tasks: BackgroundTasks | None) -> None:
    if tasks is None or not tasks.tasks:
        return
    own = response.background
    if own is None:
        response.background = tasks
    else:
        response.background = BackgroundTasks([own, *tasks.tasks])


def _merge_carrier(response: Response, carrier: Response | None, rendered: bool) -> None:
    """Copy headers (Set-Cookie...) and the status a handler set on its Response parameter."""
    if carrier is None:
        return
    if carrier.status_code and rendered:
        response.status_code = carrier.status_code
    skip = (b"content-length", b"content-type")
    response.raw_headers.extend(h for h in carrier.raw_headers if h[0] not in skip)


class _Compiled:
    """A plan and the reader of its request parameters (one per set of overrides)."""

    __slots__ = ("fast", "plan", "reader")

    def __init__(self, plan: Plan, reader: RequestReader) -> None:
        self.plan = plan
        self.reader = reader
        plan.bind_slots(reader.slot_of)
        endpoint = plan.endpoint
        # The common case runs without a RequestState: the handler alone, async,
        # taking only request parameters and the connection.
        self.fast = (
            plan.simple
            and endpoint.mode == PLAIN_ASYNC
            and all(kind in (ARG_SLOT, ARG_CONN) for _, kind, _ in endpoint.args)
        )


class _TypedEndpoint:
    """What HTTP and WebSocket typed endpoints share: compilation and overrides."""

    websocket = False

    def __init__(
        self, endpoint: Callable[..., Any], path_names: Sequence[str], dependencies: Sequence[Any]
    ) -> None:
        self.endpoint = endpoint
        self.path_names = tuple(path_names)
        self.dependencies = list(dependencies)
        plan, self.return_annotation = compile_plan(endpoint, path_names, dependencies)
        self.compiled = _Compiled(plan, RequestReader(plan.declared, allow_body=not self.websocket))
        self._overridden: dict[Any, _Compiled] = {}

    @property
    def plan(self) -> Plan:
        return self.compiled.plan

    @property
    def reader(self) -> RequestReader:
        return self.compiled.reader

    def _for(self, app: Any) -> _Compiled:
        overrides = getattr(app, "dependency_overrides", None)
        if not overrides:
            return self.compiled
        key = frozenset(overrides.items())
        compiled = self._overridden.get(key)
        if compiled is None:
            plan, _ = compile_plan(self.endpoint, self.path_names, self.dependencies, dict(overrides))
            compiled = _Compiled(plan, RequestReader(plan.declared, allow_body=not self.websocket))
            if len(self._overridden) > 32:
                self._overridden.clear()
            self._overridden[key] = compiled
        return compiled


class HTTPEndpoint(_TypedEndpoint):
    """The caller of a typed HTTP handler: `await endpoint(request)` -> Response."""

    def __init__(
        self,
        endpoint: Callable[..., Any],
        path_names: Sequence[str],
        dependencies: Sequence[Any] = (),
        *,
        response_model: Any = UNSET,
        status_code: int | None = None,
        response_class: type[Response] | None = None,
        response_model_exclude_none: bool = False,
        response_model_exclude_unset: bool = False,
    ) -> None:
        super().__init__(endpoint, path_names, dependencies)
        where = getattr(endpoint, "__qualname__", repr(endpoint)) + "()"
        if response_model is UNSET:
            response_model = response_model_of(self.return_annotation)
            if response_class is not None and not issubclass(response_class, JSONResponse):
                response_model = None  # an HTML/text/file response class renders the value itself
        self.response_model = response_model
        self.render = _Renderer(
            response_model,
            status_code,
            response_class,
            where,
            response_model_exclude_none,
            response_model_exclude_unset,
        )
        self.status_code = self.render.status_code
        self.response_class = response_class
        plan = self.plan
        self.needs_cleanup = plan.has_generators or self.reader.form is not None

    async def __call__(self, request: Request) -> Response:
        compiled = self._for(request.scope.get("app"))
        reader = compiled.reader
        if compiled.fast:
            values = await reader.read(request) if not reader.is_empty else {}
            kwargs = {
                name: values[key] if kind == ARG_SLOT else request
                for name, kind, key in compiled.plan.endpoint.args
            }
            try:
                result = await self.endpoint(**kwargs)
            except Exception:
                if reader.form is not None:
                    await request.close()
                raise
            response = self.render(result)
            if reader.form is not None:
                response.background = AfterResponse(compiled.plan, Teardown(), response.background, request)
            return response
        return await self._call_planned(request, compiled)

    async def _call_planned(self, request: Request, compiled: _Compiled) -> Response:
        plan = compiled.plan
        reader = compiled.reader
        state = RequestState()
        try:
            values = await reader.read(request) if not reader.is_empty else {}
            result = await solve(plan, request, values, state)
        except Exception as exc:
            error = await state.teardown.close(exc) if state.teardown else None
            if reader.form is not None:
                await request.close()
            if error is not None and error is not exc:
                raise error from exc
            raise
        try:
            response = self.render(result)
        except Exception as exc:
            error = await state.teardown.close(exc)
            raise (error or exc) from None
        _merge_carrier(response, state.response, result is not response)
        _merge_background(response, state.background)
        if state.teardown or reader.form is not None:
            response.background = AfterResponse(
                plan, state.teardown, response.background, request if reader.form is not None else None
            )
        return response


class WebSocketEndpoint(_TypedEndpoint):
    """The caller of a typed WebSocket handler: parameters and dependencies, no body.

    Invalid parameters refuse the handshake (a 422 denial response where the server
    supports it, else close 1008). Teardown and background tasks run when the handler
    returns.
    """

    websocket = True

    def __init__(
        self, endpoint: Callable[..., Any], path_names: Sequence[str], dependencies: Sequence[Any] = ()
    ):
        super().__init__(endpoint, path_names, dependencies)

    async def __call__(self, websocket: WebSocket) -> None:
        compiled = self._for(websocket.scope.get("app"))
        reader = compiled.reader
        state = RequestState()
        try:
            values = await reader.read(websocket) if not reader.is_empty else {}
            await solve(compiled.plan, websocket, values, state)
        except BaseException as exc:
            error = await state.teardown.close(exc) if state.teardown else None
            if error is not None and error is not exc:
                raise error from exc
            raise
        error = await state.teardown.close()
        if state.background is not None:
            await state.background()
        if error is not None:
            raise error
