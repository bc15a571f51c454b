"""Declared parameters -> validators built once; per request, one call per source kind.

`RequestReader` is compiled from every `Declared` parameter of a handler and of its
dependencies. All path, query, header and cookie parameters are checked by **one**
pydantic model, with one sub-model per source, so a validation error's location
starts with its source (`["query", "limit"]`) without any per-request bookkeeping.
The JSON body is checked by one more validator straight from the raw bytes
(pydantic-core parses it), a form body by another. Nothing here inspects a signature
or builds a model per request.

Validated values land in a flat dict keyed by *slot* (`"q0"`, `"b0"`...); the
dependency plan maps slots to keyword arguments.
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Iterable, Sequence
from functools import reduce
from typing import Annotated, Any, Union, get_args, get_origin
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, WithJsonSchema, create_model
from pydantic.functional_validators import PlainValidator
from pydantic_core import PydanticCustomError

from dartle.web.exceptions import HTTPException
from dartle.web.formparsers import FormData, UploadFile
from dartle.web.params import Declared, annotated, contains_type, is_scalar_sequence, strip_annotated
from dartle.web.requests import HTTPConnection, Request

__all__ = ["RequestReader", "RequestValidationError", "error_list"]

# The order sources appear in error lists and in the OpenAPI parameter list.
PARAM_SOURCES = ("path", "query", "header", "cookie")
_SLOT_PREFIX = {
    "path": "p",
    "query": "q",
    "header": "h",
    "cookie": "c",
    "body": "b",
    "form": "f",
    "file": "f",
}
_JSON_TYPES = ("application/json",)


class RequestValidationError(HTTPException):
    """The request did not match the handler's declared parameters: a 422.

    `errors` lists every bad field as `{"loc": [...], "msg": ..., "type": ...}`; the
    default answer is `{"detail": errors}`. Register a handler for this class (or for
    422) to answer differently.
    """

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(422, errors)
        self.errors = errors


def error_list(exc: ValidationError, prefix: Sequence[str | int] = ()) -> list[dict[str, Any]]:
    """pydantic's errors as `{"loc", "msg", "type"}` dicts (the input is not echoed back)."""
    return [
        {"loc": [*prefix, *error["loc"]], "msg": error["msg"], "type": error["type"]}
        for error in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def parse_query(query_string: bytes) -> list[tuple[str, str]]:
    """`a=1&b=x+y&c` -> [("a", "1"), ("b", "x y"), ("c", "")], as `parse_qsl(...,
    keep_blank_values=True)` reads it, without its cost for parts needing no unquoting."""
    pairs: list[tuple[str, str]] = []
    for part in query_string.decode("latin-1").split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "%" in name or "+" in name:
            name = unquote_plus(name)
        if "%" in value or "+" in value:
            value = unquote_plus(value)
        pairs.append((name, value))
    return pairs


def _check_upload(value: Any) -> UploadFile:
    if isinstance(value, UploadFile):
        return value
    raise PydanticCustomError("file_expected", "Expected an uploaded file")


# How an UploadFile is validated (an instance check) and documented (a binary string).
UploadFileField = Annotated[
    UploadFile,
    PlainValidator(_check_upload, json_schema_input_type=bytes),
    WithJsonSchema({"type": "string", "format": "binary"}),
]


def substitute_uploads(tp: Any) -> Any:
    """`tp` with every `UploadFile` replaced by `UploadFileField` (pydantic can use it)."""
    if tp is UploadFile:
        return UploadFileField
    origin = get_origin(tp)
    if origin is None:
        return tp
    args = get_args(tp)
    if origin is Annotated:
        return annotated(substitute_uploads(args[0]), *tp.__metadata__)
    new_args = tuple(substitute_uploads(a) for a in args)
    if new_args == args:
        return tp
    if origin is Union or type(tp).__name__ == "UnionType":
        return reduce(operator.or_, new_args)
    return origin[new_args] if len(new_args) > 1 else origin[new_args[0]]


_MODEL_CONFIG = ConfigDict(extra="ignore", arbitrary_types_allowed=True)
_model_counter = 0


def build_model(name: str, fields: Iterable[tuple[str, Declared]]) -> type[BaseModel]:
    """A pydantic model with one field per (slot, declaration), validated by alias."""
    global _model_counter
    _model_counter += 1
    definitions: dict[str, Any] = {
        slot: (substitute_uploads(declared.annotation), declared.field) for slot, declared in fields
    }
    model: type[BaseModel] = create_model(f"{name}_{_model_counter}", __config__=_MODEL_CONFIG, **definitions)
    return model


class _SourceGroup:
    """The fields of one source (query, header...) and how to read their raw values."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.fields: list[tuple[str, Declared]] = []
        self.repeated: set[str] = set()  # aliases that collect every value
        self.model: type[BaseModel] | None = None

    def add(self, slot: str, declared: Declared) -> None:
        self.fields.append((slot, declared))
        if is_scalar_sequence(declared.annotation):
            self.repeated.add(declared.alias)


class JSONBody:
    """The JSON body: one declared value, or several embedded under their names."""

    def __init__(self, declared: list[tuple[str, Declared]]) -> None:
        self.declared = declared
        self.embedded = len(declared) > 1 or declared[0][1].embed
        slot, first = declared[0]
        self.slot = slot
        if self.embedded:
            self.model: type[BaseModel] | None = build_model("Body", declared)
            self.validator = self.model.__pydantic_validator__
            self.required = any(d.required for _, d in declared)
            self.adapter: TypeAdapter[Any] | None = None
        else:
            self.model = None
            # The marker's constraints apply to the whole body; alias and default do not.
            options = first.marker.options if first.marker is not None else {}
            annotation: Any = annotated(first.annotation, Field(**options)) if options else first.annotation
            self.adapter = TypeAdapter[Any](annotation)
            self.validator = self.adapter.validator
            self.required = first.required
        self.media_type = first.media_type or "application/json"

    def default_values(self) -> dict[str, Any]:
        if self.embedded:
            assert self.model is not None
            with contextlib.suppress(ValidationError):
                return dict(self.model.__pydantic_validator__.validate_python({}).__dict__)
            return {}
        return {self.slot: self.declared[0][1].field.get_default(call_default_factory=True)}

    def read(self, raw: bytes, values: dict[str, Any], errors: list[dict[str, Any]]) -> None:
        if not raw:
            if self.required:
                errors.append({"loc": ["body"], "msg": "Field required", "type": "missing"})
            else:
                values.update(self.default_values())
            return
        try:
            result = self.validator.validate_json(raw)
        except ValidationError as exc:
            found = exc.errors(include_url=False, include_context=False, include_input=False)
            if found and found[0]["type"] == "json_invalid" and not found[0]["loc"]:
                message = found[0]["msg"].removeprefix("Invalid JSON: ")
                raise HTTPException(400, f"Malformed JSON body: {message}") from None
            errors.extend(error_list(exc, ("body",)))
            return
        if self.embedded:
            values.update(result.__dict__)
        else:
            values[self.slot] = result


class FormBody:
    """Form fields and uploaded files, validated together from the parsed form."""

    def __init__(self, declared: list[tuple[str, Declared]]) -> None:
        self.declared = declared
        self.model = build_model("Form", declared)
        self.validator = self.model.__pydantic_validator__
        self.has_files = any(
            d.source == "file" or contains_type(d.annotation, UploadFile) for _, d in declared
        )
        self.repeated = {d.alias for _, d in declared if _is_list(d.annotation)}
        # An empty input of an HTML form means "not given", where there is a default.
        self.optional = {d.alias for _, d in declared if not d.required}
        self.files = {d.alias for _, d in declared if d.source == "file"}
        # File parameters typed `bytes` get the upload's content.
        self.as_bytes = {
            d.alias
            for _, d in declared
            if d.source == "file"
            and contains_type(d.annotation, bytes)
            and not contains_type(d.annotation, UploadFile)
        }

    async def read(self, form: FormData, values: dict[str, Any], errors: list[dict[str, Any]]) -> None:
        data: dict[str, Any] = {}
        not_files: list[str] = []
        for _, declared in self.declared:
            alias = declared.alias
            optional = alias in self.optional
            if alias in self.repeated:
                items = [v for v in form.getlist(alias) if v != "" or not optional]
                if items:
                    data[alias] = items
            else:
                value = form.get(alias)
                if value is not None and (value != "" or not optional):
                    data[alias] = value
            if alias not in data:
                continue
            found = data[alias] if isinstance(data[alias], list) else [data[alias]]
            if alias in self.files and not all(isinstance(v, UploadFile) for v in found):
                # A plain field where a file part is declared (even if the type is bytes).
                not_files.append(alias)
                data[alias] = None
            elif alias in self.as_bytes:
                content = [await v.read() if isinstance(v, UploadFile) else v for v in found]
                data[alias] = content if isinstance(data[alias], list) else content[0]
        found_errors = [
            {"loc": ["body", alias], "msg": "Expected an uploaded file", "type": "file_expected"}
            for alias in not_files
        ]
        try:
            result = self.validator.validate_python(data)
        except ValidationError as exc:
            found_errors.extend(
                e for e in error_list(exc, ("body",)) if e["loc"][1:2] not in ([a] for a in not_files)
            )
        else:
            values.update(result.__dict__)
        errors.extend(found_errors)


def _is_list(tp: Any) -> bool:
    tp = strip_annotated(tp)
    members = get_args(tp) if get_origin(tp) in (Union,) or type(tp).__name__ == "UnionType" else None
    if members is not None:
        return any(_is_list(m) for m in members if m is not type(None))
    return get_origin(tp) in (list, set, frozenset, tuple, Sequence) or tp in (list, set, frozenset, tuple)


class RequestReader:
    """Every declared parameter of one handler (and its dependencies), compiled.

    `slot_of(declared)` names where a parameter's validated value is found in the dict
    `read()` returns. Two declarations of the same wire name (a handler and a
    dependency both reading `?limit=`) share one slot when they agree on type and
    options; otherwise compiling fails with an error naming both.
    """

    def __init__(self, declared: Iterable[Declared], *, allow_body: bool = True) -> None:
        self.groups: dict[str, _SourceGroup] = {}
        self.slots: dict[tuple[str, str], tuple[str, Declared]] = {}
        body: list[tuple[str, Declared]] = []
        form: list[tuple[str, Declared]] = []
        for item in declared:
            key = (item.source if item.source != "file" else "form", item.alias)
            existing = self.slots.get(key)
            if existing is not None:
                if existing[1].identity() != item.identity():
                    raise TypeError(
                        f"{item.source} parameter {item.alias!r} is declared twice with different "
                        f"types or options ({existing[1].annotation!r} and {item.annotation!r})"
                    )
                continue
            slot = f"{_SLOT_PREFIX[item.source]}{len(self.slots)}"
            self.slots[key] = (slot, item)
            if item.source in PARAM_SOURCES:
                self.groups.setdefault(item.source, _SourceGroup(item.source)).add(slot, item)
            elif item.source == "body":
                body.append((slot, item))
            else:
                form.append((slot, item))
        if (body or form) and not allow_body:
            raise TypeError("a WebSocket handler cannot take body or form parameters")
        if body and form:
            raise TypeError("a handler cannot take both JSON body and form parameters")
        self.body = JSONBody(body) if body else None
        self.form = FormBody(form) if form else None
        self.sources = tuple(s for s in PARAM_SOURCES if s in self.groups)
        self.params_validator: Any = None
        for group in self.groups.values():
            group.model = build_model(group.source.capitalize(), group.fields)
        if self.groups:
            outer = create_model(  # type: ignore[call-overload]
                "Params", __config__=_MODEL_CONFIG, **{s: (self.groups[s].model, ...) for s in self.sources}
            )
            self.params_validator = outer.__pydantic_validator__
        self._query = self.groups.get("query")
        header = self.groups.get("header")
        self._headers: dict[bytes, str] = (
            {d.alias.encode("latin-1"): d.alias for _, d in header.fields} if header else {}
        )
        self._header_lists = header.repeated if header else set()
        self.is_empty = not self.groups and self.body is None and self.form is None

    def slot_of(self, declared: Declared) -> str:
        source = declared.source if declared.source != "file" else "form"
        return self.slots[(source, declared.alias)][0]

    def declared(self) -> list[Declared]:
        return [d for _, d in self.slots.values()]

    def source_model(self, source: str) -> type[BaseModel] | None:
        group = self.groups.get(source)
        return group.model if group else None

    # --- per request ----------------------------------------------------------------

    async def read(self, conn: HTTPConnection) -> dict[str, Any]:
        """The validated values by slot; raises RequestValidationError listing every error."""
        values: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        validator = self.params_validator
        if validator is not None:
            try:
                params = validator.validate_python(self._raw_params(conn))
            except ValidationError as exc:
                errors.extend(error_list(exc))
            else:
                found = params.__dict__
                for source in self.sources:
                    values.update(found[source].__dict__)
        if self.body is not None:
            assert isinstance(conn, Request)
            self._check_json_type(conn)
            self.body.read(await conn.body(), values, errors)
        elif self.form is not None:
            assert isinstance(conn, Request)
            await self.form.read(await conn.form(), values, errors)
        if errors:
            raise RequestValidationError(errors)
        return values

    def _raw_params(self, conn: HTTPConnection) -> dict[str, Any]:
        scope = conn.scope
        data: dict[str, Any] = {}
        for source in self.sources:
            if source == "query":
                data["query"] = self._query_values(scope.get("query_string", b""))
            elif source == "path":
                data["path"] = scope.get("path_params") or {}
            elif source == "header":
                data["header"] = self._header_values(scope["headers"])
            else:
                data["cookie"] = conn.cookies
        return data

    def _query_values(self, query_string: bytes) -> dict[str, Any]:
        if not query_string:
            return {}
        pairs = parse_query(query_string)
        values: dict[str, Any] = dict(pairs)
        group = self._query
        if group is not None and group.repeated:
            for alias in group.repeated:
                if alias in values:
                    values[alias] = [v for k, v in pairs if k == alias]
        return values

    def _header_values(self, raw: Iterable[tuple[bytes, bytes]]) -> dict[str, Any]:
        wanted = self._headers
        lists = self._header_lists
        values: dict[str, Any] = {}
        for name, value in raw:
            alias = wanted.get(name)
            if alias is None:
                continue
            text = value.decode("latin-1")
            if alias in lists:
                values.setdefault(alias, []).append(text)
            elif alias in values and name != b"cookie":
                # Repeated single-valued headers are combined as RFC 9110 section 5.3 allows.
                values[alias] = values[alias] + ", " + text
            else:
                values[alias] = text
        return values

    def _check_json_type(self, request: Request) -> None:
        for name, value in request.scope["headers"]:
            if name == b"content-type":
                media = value.split(b";", 1)[0].strip().lower().decode("latin-1")
                if media in _JSON_TYPES or (media.startswith("application/") and media.endswith("+json")):
                    return
                raise HTTPException(
                    415,
                    f"Unsupported Media Type {media!r}: this endpoint takes a JSON body (application/json)",
                )
