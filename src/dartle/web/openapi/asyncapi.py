"""The AsyncAPI 3.0 document of an App's WebSocket routes.

OpenAPI has no words for a WebSocket; AsyncAPI does. Each `WebSocketRoute` with
`include_in_schema` is a channel whose `address` is its path template. Its typed path
parameters are channel parameters; its query and header parameters go in the channel's
`ws` binding (AsyncAPI WebSockets bindings 0.1.0), as JSON Schemas of objects. The
messages are the route's `receives=` (what the app receives: a `receive` operation)
and `sends=` (a `send` operation) types; a union type is one message per member.
"""

from __future__ import annotations

import inspect
import re
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin

from dartle.web.openapi.document import openapi_path
from dartle.web.openapi.schemas import SchemaRegistry
from dartle.web.params import strip_annotated
from dartle.web.routes import WebSocketRoute

if TYPE_CHECKING:
    from dartle.web.app import App

__all__ = ["ASYNCAPI_VERSION", "build_asyncapi"]

ASYNCAPI_VERSION = "3.0.0"
_WS_BINDING_VERSION = "0.1.0"
_ID = re.compile(r"[^A-Za-z0-9_.-]")


def _members(tp: Any) -> list[Any]:
    base = strip_annotated(tp)
    if get_origin(base) is Union or type(base).__name__ == "UnionType":
        return [m for m in get_args(base) if m is not type(None)]
    return [tp]


def _message_name(tp: Any) -> str:
    base = strip_annotated(tp)
    name = getattr(base, "__name__", None) or re.sub(r"\W+", "_", repr(base)).strip("_")
    return _ID.sub("_", name)


class _Channel:
    """One route and the schema handles it needs, between the two passes."""

    def __init__(self, prefix: str, route: WebSocketRoute, registry: SchemaRegistry, used: set[str]) -> None:
        self.route = route
        self.address = openapi_path(prefix + route.path)
        base = _ID.sub("_", route.name or self.address.strip("/").replace("/", "_") or "root")
        channel_id = base
        counter = 1
        while channel_id in used:
            counter += 1
            channel_id = f"{base}_{counter}"
        used.add(channel_id)
        self.id = channel_id
        self.sources: dict[str, int] = {}
        typed = route.typed
        if typed is not None:
            for source in ("query", "header"):
                model = typed.reader.source_model(source)
                if model is not None:
                    self.sources[source] = registry.add(model)
        self.messages: dict[str, list[tuple[str, int]]] = {}
        for direction in ("receives", "sends"):
            declared = route.options.get(direction)
            if declared is not None:
                self.messages[direction] = [(_message_name(m), registry.add(m)) for m in _members(declared)]


def build_asyncapi(app: App) -> dict[str, Any]:
    """The AsyncAPI 3.0 document describing `app`'s WebSocket routes."""
    registry = SchemaRegistry()
    used: set[str] = set()
    routes = [
        _Channel(prefix, route, registry, used)
        for prefix, route in app.iter_routes()
        if isinstance(route, WebSocketRoute) and route.include_in_schema
    ]
    registry.generate()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for channel in routes:
        channels[channel.id] = _channel(channel, registry, messages)
        for direction, action in (("receives", "receive"), ("sends", "send")):
            listed = channel.messages.get(direction)
            if not listed:
                continue
            operation: dict[str, Any] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{channel.id}"},
                "messages": [{"$ref": f"#/channels/{channel.id}/messages/{name}"} for name, _ in listed],
            }
            summary = channel.route.options.get("summary")
            if summary:
                operation["summary"] = summary
            if channel.route.tags:
                operation["tags"] = [{"name": tag} for tag in channel.route.tags]
            operations[f"{action}_{channel.id}"] = operation
    info: dict[str, Any] = {"title": app.title, "version": app.version}
    if app.description:
        info["description"] = app.description
    document: dict[str, Any] = {
        "asyncapi": ASYNCAPI_VERSION,
        "info": info,
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
    }
    components: dict[str, Any] = {}
    schemas = registry.components()
    if schemas:
        components["schemas"] = schemas
    if messages:
        components["messages"] = messages
    if components:
        document["components"] = components
    return document


def _channel(channel: _Channel, registry: SchemaRegistry, components: dict[str, Any]) -> dict[str, Any]:
    route = channel.route
    document: dict[str, Any] = {"address": channel.address}
    title = route.options.get("summary")
    if title:
        document["title"] = title
    description = route.options.get("description") or inspect.getdoc(route.endpoint)
    if description:
        document["description"] = description
    if route.pattern.names:
        document["parameters"] = {name: _parameter(route, name) for name in route.pattern.names}
    listed = [item for direction in ("receives", "sends") for item in channel.messages.get(direction, [])]
    if listed:
        document["messages"] = {}
        for name, handle in listed:
            components.setdefault(name, {"name": name, "payload": registry.schema(handle)})
            document["messages"][name] = {"$ref": f"#/components/messages/{name}"}
    binding: dict[str, Any] = {"method": "GET"}
    for source, key in (("query", "query"), ("header", "headers")):
        if source in channel.sources:
            schema = registry.inline(channel.sources[source])
            schema.pop("title", None)
            binding[key] = schema
    binding["bindingVersion"] = _WS_BINDING_VERSION
    document["bindings"] = {"ws": binding}
    return document


def _parameter(route: WebSocketRoute, name: str) -> dict[str, Any]:
    """AsyncAPI 3 channel parameters are strings with an optional description."""
    parameter: dict[str, Any] = {}
    typed = route.typed
    if typed is not None:
        for declared in typed.reader.declared():
            marker = declared.marker
            if (
                declared.source == "path"
                and declared.alias == name
                and marker is not None
                and marker.description
            ):
                parameter["description"] = marker.description
    return parameter
