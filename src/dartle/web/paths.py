"""Route path templates (`/users/{id:int}`) and the combined matcher built from them.

A `PathPattern` compiles one template into a regex fragment with one unnamed group per
parameter. A `Matcher` joins many fragments into a single regex, each alternative
wrapped in its own group: after a match, `Match.lastindex` is the group of the
alternative that matched (an outer group closes after its inner ones), which maps
straight to the route. The regex engine, in C, does the scan a Python loop over
routes would otherwise do, and declaration order is kept because alternation tries
alternatives left to right.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from dartle.web.convertors import CONVERTORS, Convertor, PathConvertor, StringConvertor

__all__ = ["Matcher", "NoMatchFound", "PathPattern", "route_path"]

T = TypeVar("T")

_PARAM = re.compile(r"{([^{}:]*)(?::([^{}]*))?}")


class NoMatchFound(Exception):
    """`url_path_for` found no route with that name and those parameters."""

    def __init__(self, name: str, params: dict[str, Any]) -> None:
        listed = ", ".join(sorted(params))
        super().__init__(f'No route named "{name}" takes the parameters ({listed}).')


class PathPattern:
    """One compiled path template.

    `source` is the regex fragment (unnamed groups only), `groups` how many groups it
    has. With `prefix=True` (mounts) it also matches any path continuing with '/',
    and its last group captures that remainder.
    """

    __slots__ = (
        "converters",
        "convertors",
        "format",
        "groups",
        "names",
        "path",
        "prefix",
        "regex",
        "source",
    )

    def __init__(self, path: str, *, prefix: bool = False, segment_regex: str | None = None):
        if not prefix and not path.startswith("/"):
            raise ValueError(f"a route path must start with '/': {path!r}")
        self.path = path
        self.prefix = prefix
        source: list[str] = []
        fmt: list[str] = []
        names: list[str] = []
        convertors: list[Convertor[Any]] = []
        position = 0
        for match in _PARAM.finditer(path):
            name, kind = match.group(1), match.group(2) or "str"
            if not name.isidentifier():
                raise ValueError(f"invalid path parameter name {name!r} in {path!r}")
            if name in names:
                raise ValueError(f"duplicate path parameter {name!r} in {path!r}")
            convertor = CONVERTORS.get(kind)
            if convertor is None:
                raise ValueError(f"unknown path convertor {kind!r} in {path!r}")
            literal = path[position : match.start()]
            source.append(re.escape(literal))
            fmt.append(literal.replace("{", "{{").replace("}", "}}"))
            regex = convertor.regex
            if segment_regex is not None and kind == "str":
                regex = segment_regex
            source.append(f"({regex})")
            fmt.append("{" + name + "}")
            names.append(name)
            convertors.append(convertor)
            position = match.end()
        tail = path[position:]
        source.append(re.escape(tail))
        fmt.append(tail.replace("{", "{{").replace("}", "}}"))
        groups = len(names)
        if prefix:
            source.append("(/.*)?")
            groups += 1
        self.source = "".join(source)
        self.format = "".join(fmt)
        self.names = tuple(names)
        self.convertors = tuple(convertors)
        # The bound `convert` of each parameter, None where it is the identity (str, path).
        self.converters = tuple(
            None if isinstance(c, StringConvertor | PathConvertor) else c.convert for c in convertors
        )
        self.groups = groups
        self.regex = re.compile(f"^{self.source}$")

    @property
    def is_static(self) -> bool:
        return not self.names and not self.prefix

    def params(self, values: Sequence[Any]) -> dict[str, Any]:
        """Convert matched group texts (in order) into the parameter dict."""
        return {
            name: value if convert is None else convert(value)
            for name, convert, value in zip(self.names, self.converters, values, strict=False)
        }

    def match(self, path: str) -> tuple[str | None, ...] | None:
        """The group texts if `path` matches this template alone, else None."""
        found = self.regex.match(path)
        return None if found is None else found.groups()

    def build(self, params: dict[str, Any]) -> str:
        """The path for these parameter values (they must be exactly the template's)."""
        if set(params) != set(self.names):
            raise KeyError(sorted(set(params) ^ set(self.names)))
        texts = {
            name: convertor.to_string(params[name])
            for name, convertor in zip(self.names, self.convertors, strict=True)
        }
        return self.format.format(**texts)

    def __repr__(self) -> str:
        return f"PathPattern({self.path!r})"


class Matcher(Generic[T]):
    """One regex over many `(pattern, target)` entries; `match` gives the first hit."""

    __slots__ = ("regex", "table")

    def __init__(self, entries: Sequence[tuple[PathPattern, T]]) -> None:
        parts: list[str] = []
        # group of the alternative -> (target, first param group, names, converters, rest group)
        table: dict[int, tuple[T, int, tuple[str, ...], tuple[Any, ...], int]] = {}
        group = 1
        for pattern, target in entries:
            parts.append(f"({pattern.source})")
            rest = group + pattern.groups if pattern.prefix else 0
            table[group] = (target, group + 1, pattern.names, pattern.converters, rest)
            group += 1 + pattern.groups
        self.table = table
        self.regex = re.compile("^(?:" + "|".join(parts) + ")$") if parts else None

    def match(self, path: str) -> tuple[T, dict[str, Any], str | None] | None:
        """The first entry matching `path`: (target, converted params, mount remainder)."""
        regex = self.regex
        if regex is None:
            return None
        found = regex.match(path)
        if found is None:
            return None
        target, first, names, converters, rest = self.table[found.lastindex]  # type: ignore[index]
        params: dict[str, Any] = {}
        if names:
            group = found.group
            for offset, name in enumerate(names):
                convert = converters[offset]
                value = group(first + offset)
                params[name] = value if convert is None else convert(value)
        return target, params, found.group(rest) if rest else None


def route_path(path: str, root_path: str) -> str:
    """The part of `path` the router matches: what follows `root_path`.

    Servers (uvicorn, dartle) put the full path in `scope["path"]` and the mount
    prefix in `root_path`; a path that does not start with `root_path` is taken as
    already relative (the older convention).
    """
    if path.startswith(root_path):
        rest = path[len(root_path) :]
        if not rest:
            return "/"
        if rest[0] == "/":
            return rest
    return path
