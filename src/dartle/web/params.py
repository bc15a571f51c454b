"""Where a handler parameter comes from: the markers and the rules that read a signature.

A handler declares what it needs with type hints. Without a marker, a name that is in
the route's path is a path parameter, a scalar type (str, int, float, bool, an Enum, a
date, a UUID, a Literal, an optional of those...) is a query parameter, and anything
else (a pydantic model, a dataclass, a TypedDict, a list, a dict) is the JSON body.
Markers say otherwise, either as the default value (`q: int = Query(1, ge=1)`) or in
`Annotated` (`q: Annotated[int, Query(ge=1)] = 1`):

    Query  Path  Header  Cookie  Body  Form  File

Each takes a default, an `alias` (the name on the wire) and pydantic's constraints and
documentation fields (`ge`, `max_length`, `pattern`, `description`, `examples`...).
`analyze_signature` turns one callable into a list of `Declared` parameters, once, at
startup; `dartle.web.extract` then compiles them into validators.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import decimal
import enum
import importlib
import inspect
import ipaddress
import pathlib
import sys
import types
import typing
import uuid
from collections.abc import Callable, Sequence
from typing import Annotated, Any, ClassVar, Literal, ParamSpec, Union, get_args, get_origin

from pydantic import Field
from pydantic.fields import FieldInfo

__all__ = [
    "Body",
    "Cookie",
    "Declared",
    "File",
    "Form",
    "Header",
    "Param",
    "Path",
    "Query",
    "Special",
    "analyze_signature",
    "is_scalar",
    "is_scalar_sequence",
    "resolve_hints",
]


class _Unset:
    """The default of a marker that was given none (the parameter is then required)."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()

# pydantic.Field keyword arguments a marker passes through unchanged.
_FIELD_OPTIONS = (
    "title",
    "description",
    "gt",
    "ge",
    "lt",
    "le",
    "multiple_of",
    "min_length",
    "max_length",
    "pattern",
    "strict",
    "examples",
    "deprecated",
    "json_schema_extra",
    "max_digits",
    "decimal_places",
)


_P = ParamSpec("_P")


def marker(cls: Callable[_P, object]) -> Callable[_P, Any]:
    """A marker class as type checkers should see it: a call that returns Any.

    `limit: int = Query(10)` then type-checks, as in FastAPI, while `Query` stays a class
    at run time (dartle.web's type-checking imports use this).
    """
    return cls


class Param:
    """A parameter's source and its validation and documentation options.

    Use the subclasses: `Query`, `Path`, `Header`, `Cookie`, `Body`, `Form`, `File`.
    `default` (or `default_factory`) makes the parameter optional; without one it is
    required. `alias` is the name on the wire when it differs from the Python name.
    `include_in_schema=False` keeps the parameter out of the OpenAPI document.
    """

    source: ClassVar[str] = ""

    def __init__(
        self,
        default: Any = UNSET,
        *,
        default_factory: Callable[[], Any] | None = None,
        alias: str | None = None,
        title: str | None = None,
        description: str | None = None,
        gt: float | None = None,
        ge: float | None = None,
        lt: float | None = None,
        le: float | None = None,
        multiple_of: float | None = None,
        min_length: int | None = None,
        max_length: int | None = None,
        pattern: str | None = None,
        strict: bool | None = None,
        examples: list[Any] | None = None,
        deprecated: bool | None = None,
        json_schema_extra: dict[str, Any] | None = None,
        max_digits: int | None = None,
        decimal_places: int | None = None,
        include_in_schema: bool = True,
    ) -> None:
        if default is not UNSET and default_factory is not None:
            raise TypeError("give a default or a default_factory, not both")
        if default is ...:
            default = UNSET  # FastAPI's spelling of "required"
        self.default = default
        self.default_factory = default_factory
        self.alias = alias
        self.include_in_schema = include_in_schema
        options = {
            "title": title,
            "description": description,
            "gt": gt,
            "ge": ge,
            "lt": lt,
            "le": le,
            "multiple_of": multiple_of,
            "min_length": min_length,
            "max_length": max_length,
            "pattern": pattern,
            "strict": strict,
            "examples": examples,
            "deprecated": deprecated,
            "json_schema_extra": json_schema_extra,
            "max_digits": max_digits,
            "decimal_places": decimal_places,
        }
        self.options: dict[str, Any] = {k: v for k, v in options.items() if v is not None}

    @property
    def description(self) -> str | None:
        description: str | None = self.options.get("description")
        return description

    @property
    def deprecated(self) -> bool:
        return bool(self.options.get("deprecated"))

    def identity(self) -> tuple[Any, ...]:
        """What two declarations of the same wire name must agree on to be merged."""
        return (type(self), repr(self.default), self.default_factory, sorted(self.options.items(), key=str))

    def __repr__(self) -> str:
        parts = [] if self.default is UNSET else [repr(self.default)]
        if self.alias:
            parts.append(f"alias={self.alias!r}")
        parts += [f"{k}={v!r}" for k, v in self.options.items()]
        return f"{type(self).__name__}({', '.join(parts)})"


class Query(Param):
    """A query-string parameter (`?name=value`); a list type collects repeats."""

    source = "query"


class Path(Param):
    """A path parameter: its name is in the route's path template. Always required."""

    source = "path"


class Header(Param):
    """A request header. The Python name's underscores become hyphens
    (`user_agent` reads `User-Agent`) unless `convert_underscores=False`."""

    source = "header"

    def __init__(self, default: Any = UNSET, *, convert_underscores: bool = True, **options: Any) -> None:
        super().__init__(default, **options)
        self.convert_underscores = convert_underscores


class Cookie(Param):
    """A cookie sent by the client."""

    source = "cookie"


class Body(Param):
    """The JSON body, or (`embed=True`, or with several body parameters) one key of it."""

    source = "body"

    def __init__(
        self,
        default: Any = UNSET,
        *,
        embed: bool = False,
        media_type: str = "application/json",
        **options: Any,
    ) -> None:
        super().__init__(default, **options)
        self.embed = embed
        self.media_type = media_type


class Form(Param):
    """A field of an urlencoded or multipart form body."""

    source = "form"

    def __init__(self, default: Any = UNSET, *, media_type: str | None = None, **options: Any) -> None:
        super().__init__(default, **options)
        self.media_type = media_type


class File(Form):
    """An uploaded file of a multipart form: annotate it `UploadFile` (or `bytes` to
    get its content, `list[UploadFile]` for several)."""

    source = "file"


# ---------------------------------------------------------------------------
# Type classification
# ---------------------------------------------------------------------------

_SCALAR_TYPES: tuple[type, ...] = (
    str,
    int,
    float,
    bool,
    bytes,
    decimal.Decimal,
    uuid.UUID,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    enum.Enum,
    pathlib.PurePath,
    ipaddress.IPv4Address,
    ipaddress.IPv6Address,
)
_UNION_TYPES: tuple[Any, ...] = (Union, types.UnionType)
_SEQUENCE_ORIGINS: tuple[Any, ...] = (list, set, frozenset, tuple, Sequence, typing.Sequence)


def strip_annotated(tp: Any) -> Any:
    """`Annotated[T, ...]` -> `T` (repeatedly)."""
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def annotated(base: Any, *metadata: Any) -> Any:
    """`Annotated[base, *metadata]`, built at run time."""
    args = (base, *metadata)
    return Annotated[args]


def _union_members(tp: Any) -> tuple[Any, ...] | None:
    if get_origin(tp) in _UNION_TYPES:
        return get_args(tp)
    return None


def is_scalar(tp: Any) -> bool:
    """Whether values of `tp` are written as one string on the wire (str, int, an Enum...)."""
    tp = strip_annotated(tp)
    if tp is Any or tp is None or tp is type(None):
        return True
    members = _union_members(tp)
    if members is not None:
        return all(is_scalar(m) for m in members)
    if get_origin(tp) is Literal:
        return True
    # NewType and TypeAliasType unwrap to their base.
    supertype = getattr(tp, "__supertype__", None)
    if supertype is not None:
        return is_scalar(supertype)
    value = getattr(tp, "__value__", None)
    if value is not None and type(tp).__name__ == "TypeAliasType":
        return is_scalar(value)
    return inspect.isclass(tp) and issubclass(tp, _SCALAR_TYPES)


def is_scalar_sequence(tp: Any) -> bool:
    """Whether `tp` is a list/set/tuple of scalars (possibly optional): a repeated parameter."""
    tp = strip_annotated(tp)
    members = _union_members(tp)
    if members is not None:
        rest = [m for m in members if m is not type(None)]
        return len(rest) == 1 and is_scalar_sequence(rest[0])
    if get_origin(tp) in _SEQUENCE_ORIGINS:
        args = [a for a in get_args(tp) if a is not Ellipsis]
        return all(is_scalar(a) for a in args)
    return tp in (list, set, frozenset, tuple)


def contains_type(tp: Any, target: type) -> bool:
    """Whether `target` appears in `tp` (through Annotated, unions and containers)."""
    tp = strip_annotated(tp)
    if tp is target or (inspect.isclass(tp) and issubclass(tp, target)):
        return True
    return any(contains_type(arg, target) for arg in get_args(tp) if arg is not Ellipsis)


# ---------------------------------------------------------------------------
# Reading a signature
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class Declared:
    """One parameter the request must supply: where from, under which name, as what type.

    `field` is the pydantic `FieldInfo` (default, constraints, documentation) the
    validators are built with; `annotation` keeps any non-dartle `Annotated` metadata.
    """

    name: str
    source: str
    alias: str
    annotation: Any
    field: FieldInfo
    marker: Param | None
    embed: bool = False
    media_type: str | None = None

    @property
    def required(self) -> bool:
        return self.field.is_required()

    @property
    def include_in_schema(self) -> bool:
        return self.marker is None or self.marker.include_in_schema

    def identity(self) -> tuple[Any, ...]:
        return (
            self.source,
            self.alias,
            repr(self.annotation),
            self.marker.identity() if self.marker else None,
        )


@dataclasses.dataclass
class Special:
    """A parameter the framework supplies: the request, the WebSocket, background tasks,
    a response to set headers on, the app, the security scopes; or a dependency."""

    name: str
    kind: str  # "request", "websocket", "connection", "background", "response", "app", "scopes", "depends"
    annotation: Any = None
    depends: Any = None  # a di.Depends for kind "depends"


Analyzed = Declared | Special


# Resolved once per callable: a plan compiled later (with dependency overrides, at
# request time) no longer has the registering code's frame to resolve names in.
_RESOLVED: dict[Any, tuple[inspect.Signature, dict[str, Any]]] = {}
_MAX_RESOLVED = 4096


def resolve_hints(call: Callable[..., Any]) -> tuple[inspect.Signature, dict[str, Any]]:
    """The signature of `call` and its resolved type hints (`Annotated` kept).

    String annotations (`from __future__ import annotations`) are evaluated in the
    function's module, then in its closure and the locals of the code registering it; a
    name that cannot be resolved is an error naming it, except in the return
    annotation, which is then ignored.
    """
    try:
        found = _RESOLVED.get(call)
    except TypeError:  # unhashable callable
        found = None
    if found is not None:
        return found
    result = _resolve_hints(call)
    with contextlib.suppress(TypeError):
        if len(_RESOLVED) >= _MAX_RESOLVED:
            _RESOLVED.clear()
        _RESOLVED[call] = result
    return result


def _resolve_hints(call: Callable[..., Any]) -> tuple[inspect.Signature, dict[str, Any]]:
    try:
        signature = inspect.signature(call)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"cannot read the signature of {call!r}: {exc}") from exc
    target = call
    if inspect.isclass(call):
        target = call.__init__
    elif not (inspect.isfunction(call) or inspect.ismethod(call)) and hasattr(call, "__call__"):  # noqa: B004
        target = call.__call__
    target = inspect.unwrap(target)
    globalns = getattr(target, "__globals__", None)
    if globalns is None:
        module = sys.modules.get(getattr(target, "__module__", "") or "")
        globalns = vars(module) if module is not None else {}
    localns = _Namespace(call)
    hints: dict[str, Any] = {}
    for name, parameter in signature.parameters.items():
        annotation = parameter.annotation
        if annotation is inspect.Parameter.empty:
            continue
        hints[name] = _evaluate(annotation, globalns, localns, f"parameter {name!r} of {_describe(call)}")
    returned = signature.return_annotation
    if returned is not inspect.Signature.empty:
        try:
            hints["return"] = _evaluate(returned, globalns, localns, "")
        except TypeError:
            pass  # e.g. a type imported only under TYPE_CHECKING: no response model then
    return signature, hints


class _Namespace(dict[str, Any]):
    """Names an annotation string may use besides the module's: the function's closure
    and the locals of the code that registered it (a handler defined inside a function,
    with `from __future__ import annotations`, names that function's locals)."""

    def __init__(self, call: Any) -> None:
        super().__init__()
        self.call = call
        self.loaded = False
        # Taken now: during eval() the nearest frame outside dartle.web is eval's own.
        self.frame: Any = sys._getframe(1)

    def __missing__(self, key: str) -> Any:
        if not self.loaded:
            self.loaded = True
            self.update(_registering_frame_locals(self.frame))
            self.frame = None
            with contextlib.suppress(TypeError, ValueError):
                self.update(inspect.getclosurevars(inspect.unwrap(self.call)).nonlocals)
            if key in self:
                return self[key]
        raise KeyError(key)


def _registering_frame_locals(frame: Any) -> dict[str, Any]:
    """The locals of the nearest caller outside dartle.web (the code registering a route)."""
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module != "dartle.web" and not module.startswith("dartle.web."):
            return dict(frame.f_locals)
        frame = frame.f_back
    return {}


def _evaluate(annotation: Any, globalns: dict[str, Any], localns: dict[str, Any], what: str) -> Any:
    if isinstance(annotation, str):
        try:
            return eval(annotation, globalns, localns)  # the annotation is code the app's author wrote
        except Exception as exc:
            raise TypeError(f"cannot resolve the annotation {annotation!r} of {what}: {exc}") from exc
    if isinstance(annotation, typing.ForwardRef):
        return _evaluate(annotation.__forward_arg__, globalns, localns, what)
    return annotation


def _describe(call: Any) -> str:
    name = getattr(call, "__qualname__", None) or getattr(type(call), "__qualname__", repr(call))
    return f"{name}()"


def _split_annotated(annotation: Any) -> tuple[Any, list[Any]]:
    """(type with other metadata kept, dartle markers found in Annotated)."""
    if get_origin(annotation) is not Annotated:
        return annotation, []
    base, *metadata = get_args(annotation)
    base, inner = _split_annotated(base)
    ours = [m for m in metadata if _is_marker(m)]
    others = [m for m in metadata if not _is_marker(m)]
    kept = annotated(base, *others) if others else base
    return kept, inner + ours


def _is_marker(value: Any) -> bool:
    from dartle.web.di import Depends

    return isinstance(value, Param | Depends)


# Annotations the framework fills itself, most specific first (a WebSocket is also an
# HTTPConnection). Imported on first use: these modules import this one.
_SPECIAL_KINDS: list[tuple[str, str, str]] = [
    ("dartle.web.websockets", "WebSocket", "websocket"),
    ("dartle.web.requests", "Request", "request"),
    ("dartle.web.requests", "HTTPConnection", "connection"),
    ("dartle.web.background", "BackgroundTasks", "background"),
    ("dartle.web.responses", "Response", "response"),
    ("dartle.web.app", "App", "app"),
    ("dartle.web.security", "SecurityScopes", "scopes"),
]


def _special_kind(annotation: Any) -> str | None:
    if not inspect.isclass(annotation):
        return None
    for module, name, kind in _SPECIAL_KINDS:
        if issubclass(annotation, getattr(importlib.import_module(module), name)):
            return kind
    return None


def analyze_signature(call: Callable[..., Any], path_names: Sequence[str]) -> tuple[list[Analyzed], Any]:
    """Classify every parameter of `call`; also return its resolved return annotation.

    Raises TypeError naming the parameter when a declaration cannot work (a `Path`
    marker for a name not in the path, `*args`, an unresolvable annotation...).
    """
    from dartle.web.di import Depends

    signature, hints = resolve_hints(call)
    where = _describe(call)
    analyzed: list[Analyzed] = []
    for name, parameter in signature.parameters.items():
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise TypeError(f"{where}: *args and **kwargs parameters cannot be filled from a request")
        if parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise TypeError(f"{where}: parameter {name!r} is positional-only; handlers are called by keyword")
        annotation, markers = _split_annotated(hints.get(name, inspect.Parameter.empty))
        default = parameter.default
        if isinstance(default, Param | Depends):
            markers.append(default)
            default = inspect.Parameter.empty
        if len(markers) > 1:
            raise TypeError(f"{where}: parameter {name!r} has more than one marker: {markers}")
        marker = markers[0] if markers else None
        if isinstance(marker, Depends):
            analyzed.append(Special(name, "depends", annotation, marker))
            continue
        if marker is None:
            kind = _special_kind(annotation)
            if kind is None and annotation is inspect.Parameter.empty and default is inspect.Parameter.empty:
                if name in ("request", "websocket"):
                    kind = name  # an unannotated `request` parameter, Starlette style
                elif len(signature.parameters) == 1 and name not in path_names:
                    kind = "connection"  # `handler(req)`: the only parameter is the connection
            if kind is not None:
                analyzed.append(Special(name, kind, annotation))
                continue
        analyzed.append(_declare(name, annotation, default, marker, path_names, where))
    return analyzed, hints.get("return", inspect.Signature.empty)


def _declare(
    name: str, annotation: Any, default: Any, marker: Param | None, path_names: Sequence[str], where: str
) -> Declared:
    if annotation is inspect.Parameter.empty:
        annotation = Any if marker is not None and marker.source in ("body",) else str
    if marker is None:
        if name in path_names:
            marker_source = "path"
        elif _is_upload(annotation):
            marker_source = "file"
        elif is_scalar(annotation):
            marker_source = "query"
        else:
            marker_source = "body"
    else:
        marker_source = marker.source
    if marker_source == "path" and name not in path_names and not (marker and marker.alias in path_names):
        raise TypeError(f"{where}: path parameter {name!r} is not in the route's path {list(path_names)}")
    if marker is not None and marker.default is not UNSET:
        if default is not inspect.Parameter.empty:
            raise TypeError(f"{where}: parameter {name!r} has a default both in its marker and its signature")
        default = marker.default
    if marker_source == "path" and (default is not inspect.Parameter.empty):
        raise TypeError(f"{where}: path parameter {name!r} cannot have a default")
    alias = marker.alias if marker is not None and marker.alias else name
    if marker_source == "header" and (marker is None or marker.alias is None):
        convert = not isinstance(marker, Header) or marker.convert_underscores
        alias = name.replace("_", "-") if convert else name
    if marker_source == "header":
        alias = alias.lower()
    options = dict(marker.options) if marker is not None else {}
    factory = marker.default_factory if marker is not None else None
    if factory is not None:
        field = Field(default_factory=factory, alias=alias, **options)
    elif default is inspect.Parameter.empty:
        field = Field(alias=alias, **options)
    else:
        field = Field(default, alias=alias, **options)
    embed = isinstance(marker, Body) and marker.embed
    media_type = getattr(marker, "media_type", None)
    return Declared(name, marker_source, alias, annotation, field, marker, embed, media_type)


def _is_upload(annotation: Any) -> bool:
    from dartle.web.formparsers import UploadFile

    return contains_type(annotation, UploadFile)
