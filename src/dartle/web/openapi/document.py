"""The OpenAPI 3.1 document of an App, from the same compiled signatures requests use.

Every `Route` with `include_in_schema` becomes one operation per method (HEAD, which
GET routes answer too, is left implicit). Parameters come from the route's request
reader (its per-source models, so constraints, defaults and descriptions are exactly
what is validated), the request body from its body or form reader, responses from the
response model and the route's `responses`, security requirements from the security
helpers among its dependencies. Routes with an old-style `handler(request)` are listed
with their path parameters.
"""

from __future__ import annotations

import http
import inspect
import re
from typing import TYPE_CHECKING, Any

from dartle.web.endpoint import HTTPEndpoint
from dartle.web.openapi.schemas import REF_PREFIX, SchemaRegistry
from dartle.web.params import Declared, resolve_hints, strip_annotated
from dartle.web.responses import Response
from dartle.web.routes import Route
from dartle.web.security import HTTPBearer

if TYPE_CHECKING:
    from dartle.web.app import App

__all__ = ["VALIDATION_ERROR_SCHEMAS", "build_openapi", "openapi_path", "path_parameter_schema"]

OPENAPI_VERSION = "3.1.0"
_CONVERTOR_SCHEMAS: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "path": {"type": "string"},
    "int": {"type": "integer", "minimum": 0},
    "float": {"type": "number", "minimum": 0},
    "uuid": {"type": "string", "format": "uuid"},
}
_TEMPLATE_PARAM = re.compile(r"{([^{}:]+)(?::[^{}]*)?}")

VALIDATION_ERROR_SCHEMAS: dict[str, Any] = {
    "ValidationError": {
        "title": "ValidationError",
        "type": "object",
        "properties": {
            "loc": {
                "title": "Location",
                "type": "array",
                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            },
            "msg": {"title": "Message", "type": "string"},
            "type": {"title": "Error Type", "type": "string"},
        },
        "required": ["loc", "msg", "type"],
    },
    "HTTPValidationError": {
        "title": "HTTPValidationError",
        "type": "object",
        "properties": {
            "detail": {"title": "Detail", "type": "array", "items": {"$ref": REF_PREFIX + "ValidationError"}}
        },
        "required": ["detail"],
    },
}


def openapi_path(path: str) -> str:
    """`/items/{id:int}` -> `/items/{id}`: OpenAPI templates have no convertors."""
    return _TEMPLATE_PARAM.sub(lambda m: "{" + m.group(1) + "}", path)


def path_parameter_schema(route: Any, name: str) -> dict[str, Any]:
    """The schema a path convertor implies for parameter `name`."""
    for param, convertor in zip(route.pattern.names, route.pattern.convertors, strict=True):
        if param == name:
            kind = next((k for k, v in _convertor_kinds().items() if isinstance(convertor, v)), "str")
            return dict(_CONVERTOR_SCHEMAS.get(kind, {"type": "string"}))
    return {"type": "string"}


def _convertor_kinds() -> dict[str, type]:
    from dartle.web.convertors import CONVERTORS

    return {name: type(convertor) for name, convertor in CONVERTORS.items()}


class _Operation:
    """One route's compiled pieces and their schema handles, between the two passes."""

    def __init__(self, prefix: str, route: Route, registry: SchemaRegistry) -> None:
        self.route = route
        self.path = openapi_path(prefix + route.path)
        self.typed = route.typed
        self.params: dict[str, int] = {}
        self.body: int | None = None
        self.response: int | None = None
        self.extra: dict[str, int] = {}
        typed = self.typed
        if typed is not None:
            reader = typed.reader
            for source in reader.sources:
                model = reader.source_model(source)
                if model is not None:
                    self.params[source] = registry.add(model)
            if reader.body is not None:
                self.body = registry.add(reader.body.model or reader.body.adapter)
            elif reader.form is not None:
                self.body = registry.add(reader.form.model)
            if typed.response_model is not None:
                self.response = registry.add(typed.render.adapter, "serialization")
        for status, spec in (route.options.get("responses") or {}).items():
            model = spec.get("model")
            if model is not None:
                self.extra[str(status)] = registry.add(model, "serialization")


def build_openapi(app: App) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `app` (a dict ready for JSON)."""
    registry = SchemaRegistry()
    operations = [
        _Operation(prefix, route, registry)
        for prefix, route in app.iter_routes()
        if isinstance(route, Route) and route.include_in_schema
    ]
    registry.generate()
    paths: dict[str, dict[str, Any]] = {}
    security_schemes: dict[str, Any] = {}
    used_ids: set[str] = set()
    needs_validation_error = False
    for operation in operations:
        route = operation.route
        for method in sorted(route.methods - {"HEAD"} or route.methods):
            document, uses_422 = _operation(operation, method, registry, security_schemes, used_ids)
            needs_validation_error |= uses_422
            paths.setdefault(operation.path, {})[method.lower()] = document
    info: dict[str, Any] = {"title": app.title, "version": app.version}
    if app.summary:
        info["summary"] = app.summary
    if app.description:
        info["description"] = app.description
    result: dict[str, Any] = {"openapi": OPENAPI_VERSION, "info": info}
    if app.servers:
        result["servers"] = app.servers
    result["paths"] = paths
    components: dict[str, Any] = {}
    schemas = registry.components()
    if needs_validation_error:
        schemas.update(VALIDATION_ERROR_SCHEMAS)
    if schemas:
        components["schemas"] = dict(sorted(schemas.items()))
    if security_schemes:
        components["securitySchemes"] = security_schemes
    if components:
        result["components"] = components
    if app.openapi_tags:
        result["tags"] = app.openapi_tags
    return result


def _operation(
    operation: _Operation,
    method: str,
    registry: SchemaRegistry,
    security_schemes: dict[str, Any],
    used_ids: set[str],
) -> tuple[dict[str, Any], bool]:
    route = operation.route
    options = route.options
    typed = operation.typed
    document: dict[str, Any] = {}
    if route.tags:
        document["tags"] = list(route.tags)
    name: str = route.name or getattr(route.endpoint, "__name__", None) or "endpoint"
    document["summary"] = options.get("summary") or name.replace("_", " ").strip().title()
    description = options.get("description") or inspect.getdoc(route.endpoint)
    if description:
        document["description"] = description
    document["operationId"] = _operation_id(
        options.get("operation_id"), name, operation.path, method, used_ids
    )
    parameters = _parameters(operation, registry)
    if parameters:
        document["parameters"] = parameters
    validates = bool(typed is not None and not typed.reader.is_empty)
    if operation.body is not None and typed is not None:
        document["requestBody"] = _request_body(operation, registry, document["operationId"])
    document["responses"] = _responses(operation, registry, validates)
    if options.get("deprecated"):
        document["deprecated"] = True
    if typed is not None:
        security = _security(typed, security_schemes)
        if security:
            document["security"] = security
    extra = options.get("openapi_extra")
    if extra:
        document.update(extra)
    return document, validates


def _operation_id(given: str | None, name: str, path: str, method: str, used: set[str]) -> str:
    candidate = given or re.sub(r"\W", "_", f"{name}{path}") + "_" + method.lower()
    unique = candidate
    counter = 1
    while unique in used:
        counter += 1
        unique = f"{candidate}_{counter}"
    used.add(unique)
    return unique


def _parameters(operation: _Operation, registry: SchemaRegistry) -> list[dict[str, Any]]:
    route = operation.route
    typed = operation.typed
    found: list[dict[str, Any]] = []
    documented_path: set[str] = set()
    if typed is not None:
        reader = typed.reader
        for source in reader.sources:
            model_schema = registry.inline(operation.params[source])
            properties = model_schema.get("properties", {})
            required = set(model_schema.get("required", []))
            for declared in _declared(reader.declared(), source):
                if source == "path":
                    documented_path.add(declared.alias)
                if not declared.include_in_schema:
                    continue
                found.append(
                    _parameter(declared, properties.get(declared.alias, {}), declared.alias in required)
                )
    for name in route.pattern.names:
        if name not in documented_path:
            found.append(
                {"name": name, "in": "path", "required": True, "schema": path_parameter_schema(route, name)}
            )
    return found


def _declared(declared: list[Declared], source: str) -> list[Declared]:
    return [d for d in declared if d.source == source]


def _parameter(declared: Declared, schema: dict[str, Any], required: bool) -> dict[str, Any]:
    parameter: dict[str, Any] = {"name": declared.alias, "in": declared.source}
    if declared.source == "path" or required:
        parameter["required"] = True
    description = schema.pop("description", None) or (
        declared.marker.description if declared.marker else None
    )
    if description:
        parameter["description"] = description
    if declared.marker is not None and declared.marker.deprecated:
        parameter["deprecated"] = True
    parameter["schema"] = schema
    return parameter


def _request_body(operation: _Operation, registry: SchemaRegistry, operation_id: str) -> dict[str, Any]:
    assert operation.typed is not None and operation.body is not None
    reader = operation.typed.reader
    if reader.form is not None:
        schema = registry.inline(operation.body)
        schema["title"] = f"Body_{operation_id}"
        media = "multipart/form-data" if reader.form.has_files else "application/x-www-form-urlencoded"
        explicit = next((d.media_type for _, d in reader.form.declared if d.media_type), None)
        return {"content": {explicit or media: {"schema": schema}}, "required": True}
    body = reader.body
    assert body is not None
    if body.embedded:
        schema = registry.inline(operation.body)
        schema["title"] = f"Body_{operation_id}"
    else:
        schema = registry.schema(operation.body)
    document: dict[str, Any] = {"content": {body.media_type: {"schema": schema}}}
    if body.required:
        document["required"] = True
    first = body.declared[0][1]
    if not body.embedded and first.marker is not None and first.marker.description:
        document["description"] = first.marker.description
    return document


def _responses(operation: _Operation, registry: SchemaRegistry, validates: bool) -> dict[str, Any]:
    route = operation.route
    typed = operation.typed
    options = route.options
    status = typed.status_code if typed is not None else 200
    success: dict[str, Any] = {"description": options.get("response_description") or "Successful Response"}
    if status not in (204, 304) and status >= 200:
        media, schema = _success_content(operation, registry)
        success["content"] = {media: {"schema": schema}}
    responses: dict[str, Any] = {str(status): success}
    # The answers the framework itself gives, so that clients (and schema-driven
    # testers) know every status an operation can return.
    if typed is not None and (typed.reader.body is not None or typed.reader.form is not None):
        responses["400"] = _error("Malformed request body")
    helpers = [node.call for node in typed.plan.security_nodes()] if typed is not None else []
    if any(isinstance(helper, HTTPBearer) for helper in helpers) and "400" not in responses:
        responses["400"] = _error("Malformed credentials")
    if helpers:
        responses["401"] = _error("Not authenticated")
    if validates:
        responses["422"] = {
            "description": "Validation Error",
            "content": {"application/json": {"schema": {"$ref": REF_PREFIX + "HTTPValidationError"}}},
        }
    for code, spec in (options.get("responses") or {}).items():
        key = str(code)
        entry = dict(responses.get(key, {}))
        entry.update({k: v for k, v in spec.items() if k != "model"})
        if "description" not in entry:
            entry["description"] = _phrase(key)
        if key in operation.extra:
            content = entry.setdefault("content", {})
            content.setdefault("application/json", {})["schema"] = registry.schema(operation.extra[key])
        responses[key] = entry
    return responses


def _error(description: str) -> dict[str, Any]:
    schema = {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _success_content(operation: _Operation, registry: SchemaRegistry) -> tuple[str, dict[str, Any]]:
    typed = operation.typed
    if typed is None:
        # An old-style handler: its return annotation is all there is to go on.
        try:
            returned = resolve_hints(operation.route.endpoint)[1].get("return")
        except TypeError:
            returned = None
        return _media_of(strip_annotated(returned))
    if operation.response is not None:
        return typed.render.media_type, registry.schema(operation.response)
    response_class = typed.response_class
    if response_class is not None and response_class.media_type:
        return response_class.media_type, (
            {"type": "string"} if response_class.media_type.startswith("text/") else {}
        )
    return _media_of(strip_annotated(typed.return_annotation))


def _media_of(returned: Any) -> tuple[str, dict[str, Any]]:
    if returned is str:
        return "text/plain", {"type": "string"}
    if returned is bytes:
        return "application/octet-stream", {"type": "string", "contentMediaType": "application/octet-stream"}
    if inspect.isclass(returned) and issubclass(returned, Response) and returned.media_type:
        media = returned.media_type
        return media, ({"type": "string"} if media.startswith("text/") else {})
    return "application/json", {}


def _phrase(code: str) -> str:
    try:
        return http.HTTPStatus(int(code)).phrase
    except ValueError:
        return "Response"


def _security(typed: HTTPEndpoint, schemes: dict[str, Any]) -> list[dict[str, list[str]]]:
    requirement: dict[str, list[str]] = {}
    optional = False
    for node in typed.plan.security_nodes():
        helper = node.call
        name = helper.scheme_name  # type: ignore[attr-defined]
        schemes[name] = helper.model  # type: ignore[attr-defined]
        scopes = requirement.setdefault(name, [])
        scopes.extend(s for s in node.scopes if s not in scopes)
        optional |= not getattr(helper, "auto_error", True)
    if not requirement:
        return []
    # Every helper runs, so all are required together; one that lets requests without
    # credentials through (auto_error=False) makes the whole requirement optional.
    return [requirement, {}] if optional else [requirement]
