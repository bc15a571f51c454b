"""Path parameter convertors: `{id:int}` in a route path.

A convertor is a regex fragment (no capturing groups) plus two functions: one turns
the matched text into a value for the handler, the other turns a value back into path
text for `url_path_for`. Register your own with `register_convertor`.
"""

from __future__ import annotations

import math
import re
import uuid
from typing import Any, ClassVar, Generic, TypeVar

__all__ = [
    "CONVERTORS",
    "Convertor",
    "FloatConvertor",
    "IntConvertor",
    "PathConvertor",
    "StringConvertor",
    "UUIDConvertor",
    "register_convertor",
]

T = TypeVar("T")


class Convertor(Generic[T]):
    """Base class: set `regex`, implement `convert` and `to_string`."""

    regex: ClassVar[str] = ""

    def convert(self, value: str) -> T:
        raise NotImplementedError

    def to_string(self, value: T) -> str:
        raise NotImplementedError


class StringConvertor(Convertor[str]):
    """One path segment (no '/'); the default."""

    regex = "[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        value = str(value)
        if "/" in value:
            raise ValueError("a str path parameter cannot contain '/'")
        if not value:
            raise ValueError("a str path parameter cannot be empty")
        return value


class PathConvertor(Convertor[str]):
    """The rest of the path, slashes included (may be empty)."""

    regex = ".*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return str(value)


class IntConvertor(Convertor[int]):
    """A non-negative decimal integer."""

    regex = "[0-9]+"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        value = int(value)
        if value < 0:
            raise ValueError("an int path parameter cannot be negative")
        return str(value)


class FloatConvertor(Convertor[float]):
    """A non-negative decimal number ('1', '1.5')."""

    regex = r"[0-9]+(?:\.[0-9]+)?"

    def convert(self, value: str) -> float:
        return float(value)

    def to_string(self, value: float) -> str:
        value = float(value)
        if value < 0 or math.isnan(value) or math.isinf(value):
            raise ValueError("a float path parameter must be finite and non-negative")
        return f"{value:0.20f}".rstrip("0").rstrip(".")


class UUIDConvertor(Convertor[uuid.UUID]):
    """A UUID in its canonical 8-4-4-4-12 hex form."""

    regex = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

    def convert(self, value: str) -> uuid.UUID:
        return uuid.UUID(value)

    def to_string(self, value: uuid.UUID) -> str:
        return str(value)


CONVERTORS: dict[str, Convertor[Any]] = {
    "str": StringConvertor(),
    "path": PathConvertor(),
    "int": IntConvertor(),
    "float": FloatConvertor(),
    "uuid": UUIDConvertor(),
}


def register_convertor(name: str, convertor: Convertor[Any]) -> None:
    """Make `{param:name}` available in route paths registered from now on."""
    if not name.isidentifier():
        raise ValueError(f"convertor name must be an identifier, got {name!r}")
    if re.compile(convertor.regex).groups:
        raise ValueError("a convertor's regex must not contain capturing groups; use (?:...)")
    CONVERTORS[name] = convertor
