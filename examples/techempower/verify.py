"""The TechEmpower verification rules, as functions returning the problems they find.

Written from the TFB toolset's rules (toolset/test_types/verifications.py and each test
type's checks), independently of the apps: tests/techempower uses them on every
endpoint, and the benchmark uses them to check a server's answer before and after its
load. An empty list means the answer passes. Standard library only.
"""

from __future__ import annotations

import datetime
import html.parser
import json
import re
from collections.abc import Mapping
from typing import Any

CONTENT_TYPES = {
    "json": r"^application/json(; ?charset=(UTF|utf)-8)?$",
    "html": r"^text/html; ?charset=(UTF|utf)-8$",
    "plaintext": r"^text/plain(; ?charset=(UTF|utf)-8)?$",
}
DATE_FORMAT = "%a, %d %b %Y %H:%M:%S %Z"

# The fortunes page TFB expects, up to markup whitespace and how characters are escaped.
FORTUNES_PAGE = (
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
    "<tr><th>id</th><th>message</th></tr>"
    "<tr><td>11</td><td>&lt;script&gt;alert(&quot;This should not be displayed in a browser "
    "alert box.&quot;);&lt;/script&gt;</td></tr>"
    "<tr><td>4</td><td>A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1</td></tr>"
    "<tr><td>5</td><td>A computer program does what you tell it to do, not what you want it to "
    "do.</td></tr>"
    "<tr><td>2</td><td>A computer scientist is someone who fixes things that aren&apos;t "
    "broken.</td></tr>"
    "<tr><td>8</td><td>A list is only as strong as its weakest link. — Donald Knuth</td></tr>"
    "<tr><td>0</td><td>Additional fortune added at request time.</td></tr>"
    "<tr><td>3</td><td>After enough decimal places, nobody gives a damn.</td></tr>"
    "<tr><td>7</td><td>Any program that runs right is obsolete.</td></tr>"
    "<tr><td>10</td><td>Computers make very fast, very accurate mistakes.</td></tr>"
    "<tr><td>6</td><td>Emacs is a nice operating system, but I prefer UNIX. — Tom "
    "Christaensen</td></tr>"
    "<tr><td>9</td><td>Feature: A bug with seniority.</td></tr>"
    "<tr><td>1</td><td>fortune: No such file or directory</td></tr>"
    "<tr><td>12</td><td>フレームワークのベンチマーク</td></tr>"
    "</table></body></html>"
)


def check_headers(headers: Mapping[str, str], kind: str) -> list[str]:
    """Server, Date (HTTP-date), Content-Type (`kind`: json, html, plaintext), and a size."""
    headers = {name.lower(): value for name, value in headers.items()}
    problems = [f"no {name} header" for name in ("server", "date", "content-type")
                if name not in headers]
    if "content-length" not in headers and "transfer-encoding" not in headers:
        problems.append("neither Content-Length nor Transfer-Encoding")
    if "date" in headers:
        try:
            datetime.datetime.strptime(headers["date"], DATE_FORMAT)
        except ValueError:
            problems.append(f"Date {headers['date']!r} is not an HTTP-date")
    content_type = headers.get("content-type")
    if content_type is not None and not re.match(CONTENT_TYPES[kind], content_type):
        problems.append(f"Content-Type {content_type!r} is not {kind}")
    return problems


def check_json(body: bytes) -> list[str]:
    """The JSON test: exactly {"message": "Hello, World!"}."""
    value, problems = _json(body)
    if problems:
        return problems
    if value != {"message": "Hello, World!"}:
        return [f'expected {{"message": "Hello, World!"}}, got {_short(body)}']
    return []


def check_plaintext(body: bytes) -> list[str]:
    return [] if body == b"Hello, World!" else [f"expected 'Hello, World!', got {_short(body)}"]


def check_world(value: Any) -> list[str]:
    """One World row: {"id": 1..10000, "randomNumber": 1..10000}, integers, nothing else."""
    if not isinstance(value, dict):
        return [f"expected a JSON object, got {str(value)[:40]}"]
    if set(value) != {"id", "randomNumber"}:
        return [f"expected the keys id and randomNumber, got {sorted(value)}"]
    problems = []
    for key in ("id", "randomNumber"):
        number = value[key]
        if not isinstance(number, int) or isinstance(number, bool):
            problems.append(f"{key} is not an integer: {number!r}")
        elif not 1 <= number <= 10_000:
            problems.append(f"{key} {number} is outside 1..10000")
    return problems


def check_single_world(body: bytes) -> list[str]:
    """The single-query test: one World object (not a list)."""
    value, problems = _json(body)
    return problems or check_world(value)


def check_worlds(body: bytes, count: int) -> list[str]:
    """The multiple-queries, updates and cached tests: a list of `count` World objects."""
    value, problems = _json(body)
    if problems:
        return problems
    if not isinstance(value, list):
        return ["expected a JSON array of World objects"]
    if len(value) != count:
        problems.append(f"expected {count} World objects, got {len(value)}")
    for world in value:
        problems += check_world(world)
        if len(problems) >= 5:  # enough to say what is wrong
            break
    return problems


def check_fortunes(body: bytes) -> list[str]:
    """The fortunes page: TFB's table, rows in that order, every message escaped."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return ["the fortunes page is not UTF-8"]
    expected, got = page_tokens(FORTUNES_PAGE), page_tokens(text)
    if got == expected:
        return []
    first = next((i for i, (a, b) in enumerate(zip(expected, got, strict=False)) if a != b),
                 min(len(expected), len(got)))
    return [f"the fortunes page differs at token {first}: expected "
            f"{expected[first:first + 3]}, got {got[first:first + 3]}"]


class _Tokens(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # &lt; and &#60; read alike
        self.tokens: list[tuple[str, str]] = []

    def handle_decl(self, decl: str) -> None:
        self.tokens.append(("decl", decl.lower()))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tokens.append(("start", tag))

    def handle_endtag(self, tag: str) -> None:
        self.tokens.append(("end", tag))

    def handle_data(self, data: str) -> None:
        if data.strip():  # whitespace between tags is layout, not content
            self.tokens.append(("text", data.strip()))


def page_tokens(page: str) -> list[tuple[str, str]]:
    """The page as (kind, value) tokens: doctype, tags, unescaped text."""
    parser = _Tokens()
    parser.feed(page)
    parser.close()
    return parser.tokens


def _json(body: bytes) -> tuple[Any, list[str]]:
    if not body:
        return None, ["empty body"]
    try:
        return json.loads(body), []
    except ValueError as exc:
        return None, [f"invalid JSON ({exc}): {_short(body)}"]


def _short(body: bytes) -> str:
    return repr(body[:80])
