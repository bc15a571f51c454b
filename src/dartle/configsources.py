"""Where each option comes from: flags > DARTLE_* variables > a TOML file > defaults.

The file is the one given with --config (or $DARTLE_CONFIG), else [tool.dartle] in the
pyproject.toml of the working directory. Every option of `Config` may come from any
source under its own name: `--timeout-keep-alive` is `DARTLE_TIMEOUT_KEEP_ALIVE` and
`timeout-keep-alive` (or `timeout_keep_alive`) in TOML. Values are converted by the
option's type; a value that does not fit is an error naming the option and its source.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from dartle.config import Config, ConfigError, parse_size

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]

ENV_PREFIX = "DARTLE_"
FILE_KEY = "config"  # --config / DARTLE_CONFIG: names the file, so it is no option in it


@dataclass(frozen=True)
class Source:
    """Where one value came from: kind is default, flag, env or file."""

    kind: Literal["default", "flag", "env", "file"]
    detail: str = ""

    def __str__(self) -> str:
        return self.kind if not self.detail else f"{self.kind} {self.detail}"


DEFAULT = Source("default")


@dataclass
class Resolved:
    """The effective configuration, the source of each value, and what was ignored."""

    config: Config
    sources: dict[str, Source]
    file: str | None
    warnings: list[str]


@dataclass(frozen=True)
class _Option:
    name: str
    kind: str  # bool, int, float, str, list, size, choice, any
    optional: bool
    choices: tuple[str, ...] = ()


def _options() -> dict[str, _Option]:
    hints = typing.get_type_hints(Config)
    options: dict[str, _Option] = {}
    for f in dataclasses.fields(Config):
        hint = hints[f.name]
        args = typing.get_args(hint)
        optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args
        if optional:
            hint = next(a for a in args if a is not type(None))
        origin = typing.get_origin(hint)
        choices: tuple[str, ...] = ()
        if f.metadata.get("kind") == "size":
            kind = "size"
        elif origin is Literal:
            kind, choices = "choice", typing.get_args(hint)
        elif origin is list:
            kind = "list"
        elif hint in (bool, int, float, str):
            kind = hint.__name__
        else:
            kind = "any"
        options[f.name] = _Option(f.name, kind, optional, choices)
    return options


OPTIONS = _options()

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def from_text(option: _Option, text: str) -> Any:
    """Convert an environment variable's text to the option's type."""
    stripped = text.strip()
    if option.optional and stripped.lower() in ("", "none"):
        return None
    kind = option.kind
    if kind == "bool":
        if stripped.lower() in _TRUE:
            return True
        if stripped.lower() in _FALSE:
            return False
        raise ValueError(f"{text!r} is not a boolean (use true/false, 1/0, yes/no, on/off)")
    if kind == "int":
        try:
            return int(stripped)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
    if kind == "float":
        try:
            number = float(stripped)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        if not math.isfinite(number):
            raise ValueError(f"{text!r} is not a finite number")
        return number
    if kind == "size":
        return parse_size(stripped)
    if kind == "list":
        return [item.strip() for item in text.split(",") if item.strip()]
    return text


def from_toml(option: _Option, value: Any) -> Any:
    """Check (and where needed convert) a TOML value for the option's type."""
    kind = option.kind
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite number")
        return float(value)
    if kind == "size":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            return parse_size(value)
    if kind in ("str", "choice", "any") and isinstance(value, str):
        return value
    if kind == "list":
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return value
    wanted = {
        "bool": "true or false", "int": "a whole number", "float": "a number",
        "size": "a size such as \"512M\" or a number of bytes", "list": "a list of strings",
    }.get(kind, "a string")
    raise ValueError(f"must be {wanted}, not {value!r}")


def _unknown(name: str) -> str:
    close = difflib.get_close_matches(name, OPTIONS, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def read_file(path: str, *, pyproject: bool) -> dict[str, Any]:
    """The dartle table of a TOML file: [tool.dartle] in pyproject.toml, else the top level
    (or its [tool.dartle] table, so that another project's pyproject.toml works too)."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ValueError(f"cannot read config file {path!r}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config file {path!r} is not valid TOML: {exc}") from exc
    tool = data.get("tool")
    table = tool.get("dartle") if isinstance(tool, dict) else None
    if table is None:
        return {} if pyproject else data
    if not isinstance(table, dict):
        raise ValueError(f"{path}: [tool.dartle] must be a table")
    return table


def _file_layer(path: str, label: str, pyproject: bool) -> dict[str, Any]:
    values: dict[str, Any] = {}
    problems = []
    for key, value in read_file(path, pyproject=pyproject).items():
        name = key.replace("-", "_")
        if name == FILE_KEY:
            problems.append(f"{label}: '{key}' names the config file and cannot be set in one")
        elif name not in OPTIONS:
            problems.append(f"{label}: unknown option {key!r}{_unknown(name)}")
        else:
            try:
                values[name] = from_toml(OPTIONS[name], value)
            except ValueError as exc:
                problems.append(f"{label}: {key} {exc}")
    if problems:
        raise ValueError("; ".join(problems))
    return values


# DARTLE_* variables that belong to dartle's test suite, CI and tools, not to the server.
_TOOLING = ("require_services", "test_", "soak", "autobahn_", "fuzz_", "wstest_", "demo_",
            "hypothesis_")


def _env_layer(env: Mapping[str, str], warnings: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    problems = []
    for var in sorted(env):
        if not var.startswith(ENV_PREFIX):
            continue
        name = var[len(ENV_PREFIX):].lower()
        if name == FILE_KEY:
            continue
        if name not in OPTIONS:
            if name.startswith(_TOOLING):
                continue  # the test suite's and CI's own switches (DARTLE_REQUIRE_SERVICES...)
            # Other programs use the prefix too, so an unknown variable is worth a warning
            # (a typo of an option shows up here), not a refusal to start.
            warnings.append(f"ignoring ${var}: not a dartle option{_unknown(name)}")
            continue
        try:
            values[name] = from_text(OPTIONS[name], env[var])
        except ValueError as exc:
            problems.append(f"${var}: {exc}")
    if problems:
        raise ValueError("; ".join(problems))
    return values


def resolve(
    flags: Mapping[str, Any],
    *,
    flag_names: Mapping[str, str] | None = None,
    config_file: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str = ".",
) -> Resolved:
    """Merge the sources into one validated Config.

    `flags` holds only the options given on the command line (or to `dartle.run`), by
    option name; `flag_names` maps an option to the flag that set it, for messages.
    """
    env = os.environ if env is None else env
    flag_names = flag_names or {}
    warnings: list[str] = []
    sources: dict[str, Source] = {}
    values: dict[str, Any] = {}

    config_file = config_file or env.get(ENV_PREFIX + FILE_KEY.upper()) or None
    if config_file:
        file_label = f"config file {config_file}"
        file_values = _file_layer(config_file, file_label, pyproject=False)
        shown_file: str | None = config_file
    else:
        pyproject = os.path.join(cwd, "pyproject.toml")
        file_label = "pyproject.toml [tool.dartle]"
        file_values = _file_layer(pyproject, file_label, True) if os.path.isfile(pyproject) else {}
        shown_file = pyproject if file_values else None
    file_source = Source("file", config_file or "pyproject.toml [tool.dartle]")
    for name, value in file_values.items():
        values[name], sources[name] = value, file_source
    for name, value in _env_layer(env, warnings).items():
        values[name], sources[name] = value, Source("env", ENV_PREFIX + name.upper())
    for name, value in flags.items():
        if name not in OPTIONS:
            raise TypeError(f"unknown server option(s): {name}")
        values[name] = value
        sources[name] = Source("flag", flag_names.get(name, name))
    try:
        config = Config(**values)
    except ConfigError as exc:
        raise ConfigError([
            (name, f"{message} (from {sources.get(name, DEFAULT)})") for name, message in exc.problems
        ]) from None
    if "forwarded_allow_ips" not in sources and "FORWARDED_ALLOW_IPS" in os.environ:
        sources["forwarded_allow_ips"] = Source("env", "FORWARDED_ALLOW_IPS")  # uvicorn's name
    for name in OPTIONS:
        sources.setdefault(name, DEFAULT)
    return Resolved(config, sources, shown_file, warnings)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return json.dumps(repr(value))


def render(resolved: Resolved) -> str:
    """`dartle config`'s output: TOML lines a [tool.dartle] table could hold, each with
    its source as a comment; unset options are commented out."""
    config = resolved.config
    lines = []
    if resolved.file:
        lines.append(f"# file: {resolved.file}")
    lines.extend(f"# warning: {warning}" for warning in resolved.warnings)
    rows = []
    for name in OPTIONS:
        value = getattr(config, name)
        key = name.replace("_", "-")
        text = f"# {key} is unset" if value is None else f"{key} = {_toml_value(value)}"
        rows.append((text, str(resolved.sources[name])))
    width = max(len(text) for text, _ in rows)
    lines.extend(f"{text.ljust(width)}  # {source}" for text, source in rows)
    return "\n".join(lines)
