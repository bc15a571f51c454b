"""The scenarios: what is served, by which stacks, under which load, and what a right answer is.

A *stack* is what one row of the results measures: a server (a row of `SERVERS`)
serving an app, with a number of workers. Most scenarios serve one raw ASGI app from
every server; the framework scenarios serve each framework's own app ("dartle" is the
dartle framework on the dartle server, "dartle on uvicorn" the same app on uvicorn,
which tells the framework's cost from the server's).

A scenario also says which pairs of stacks its ratio table compares (`comparisons`);
by default the stack named "dartle" against each of the others.

Adding a scenario is adding a row to `SCENARIOS`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from benchmarks.apps import stream
from examples.techempower import verify

HELLO = "benchmarks.apps.hello:app"
# The raw-ASGI scenarios' servers, in the order of the tables. daphne (Twisted, the
# Channels server) serves plaintext, websocket and idle only: the run must fit in 15
# minutes, and it is far behind the others in every HTTP scenario.
ASGI_SERVERS = ("dartle", "uvicorn", "granian", "hypercorn")
WITH_DAPHNE = (*ASGI_SERVERS, "daphne")
# HTTP/2 without TLS (prior knowledge): uvicorn and daphne do not speak it.
H2_SERVERS = ("dartle", "hypercorn", "granian")


@dataclass(frozen=True)
class Request:
    """The request a load generator repeats and the probe sends, and its right answer."""

    method: str = "GET"
    path: str = "/"
    body: bytes = b""
    content_type: str | None = None
    expected: bytes = b"Hello, world!"  # the response body (WebSocket: the echo)
    json: bool = False  # compare `expected` and the body as JSON values, not as bytes
    # for answers that differ each time (random rows): the problems with a body, instead
    # of comparing it with `expected`
    verify: Callable[[bytes], list[str]] | None = None


@dataclass(frozen=True)
class Stack:
    """One row of the results: `server` (a key of SERVERS) serving `app`."""

    name: str
    server: str
    app: str
    workers: int = 1


@dataclass(frozen=True)
class Scenario:
    """One load shape over a set of stacks.

    load: the load generator: "wrk", "h2load", "websocket" (benchmarks/wsload.py) or
        "idle" (benchmarks/idle.py: idle keep-alive connections and the server's RSS).
    mode: what a server must speak to take part, a key of ServerSpec.modes ("http1",
        "h2c", "websocket", "idle"); a server without it is reported "not supported".
    pinning: "split" puts the server on one core and the load generator on the other;
        "shared" gives both cores to both (the workers scenario, where the server needs
        them).
    postgres: the stacks need the TechEmpower database: the harness starts one
        (examples/techempower/postgres.py, on the load generator's core) and gives its
        URL to the servers as $TFB_DATABASE_URL.
    """

    name: str
    description: str
    stacks: tuple[Stack, ...]
    request: Request = Request()
    load: str = "wrk"
    mode: str = "http1"
    connections: int = 64
    pipeline: int = 1  # requests written at once per connection (HTTP/1.1 pipelining)
    streams: int = 1  # concurrent streams per connection (h2load -m)
    pinning: str = "split"
    postgres: bool = False
    deflate: bool = False  # WebSocket: offer permessage-deflate and compress
    comparisons: tuple[tuple[str, str], ...] = field(default=())

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """(subject, anchor) stack names for the ratio table."""
        if self.comparisons:
            return self.comparisons
        return tuple(("dartle", stack.name) for stack in self.stacks if stack.name != "dartle")

    def stack(self, name: str) -> Stack:
        return next(stack for stack in self.stacks if stack.name == name)


def each_server(app: str, servers: Iterable[str] = ASGI_SERVERS) -> tuple[Stack, ...]:
    """The same app on each server; each stack is named after its server."""
    return tuple(Stack(server, server, app) for server in servers)


def versus(subjects: Iterable[str], anchors: Iterable[str]) -> tuple[tuple[str, str], ...]:
    anchors = tuple(anchors)
    return tuple((subject, anchor) for subject in subjects for anchor in anchors)


DARTLE_WEB = "benchmarks.apps.dartle_web:app"
STARLETTE_WEB = "benchmarks.apps.starlette_web:app"
FASTAPI_WEB = "benchmarks.apps.fastapi_web:app"
FRAMEWORK_STACKS = (
    Stack("dartle", "dartle", DARTLE_WEB),
    Stack("dartle on uvicorn", "uvicorn", DARTLE_WEB),
    Stack("starlette on uvicorn", "uvicorn", STARLETTE_WEB),
    Stack("fastapi on uvicorn", "uvicorn", FASTAPI_WEB),
)
FRAMEWORK_PAIRS = versus(("dartle", "dartle on uvicorn"), ("starlette on uvicorn", "fastapi on uvicorn"))

WORKER_SERVERS = ("dartle", "uvicorn", "granian")
WORKER_STACKS = tuple(Stack(f"{server} x{n}", server, HELLO, workers=n)
                      for n in (1, 2) for server in WORKER_SERVERS)
WORKER_PAIRS = (
    *versus(["dartle x1"], [f"{s} x1" for s in WORKER_SERVERS[1:]]),
    *versus(["dartle x2"], [f"{s} x2" for s in WORKER_SERVERS[1:]]),
    # how each server scales from one worker to two
    *((f"{server} x2", f"{server} x1") for server in WORKER_SERVERS),
)

TFB_STACKS = (
    Stack("dartle", "dartle", "examples.techempower.app:app"),
    Stack("fastapi on uvicorn", "uvicorn", "examples.techempower.fastapi_app:app"),
)


def tfb(name: str, description: str, path: str,
        check: Callable[[bytes], list[str]]) -> Scenario:
    """A TechEmpower test type: examples/techempower in dartle and in FastAPI, on PostgreSQL."""
    return Scenario(name, f"TechEmpower {description}, 64 connections", TFB_STACKS,
                    Request(path=path, expected=b"", verify=check), postgres=True)


ECHO_BODY = b"0123456789abcdef" * 640  # 10 KiB
# framework-typed (benchmarks/apps/typed.py)
TYPED_PATH = "/items/42?q=hello&limit=5"
TYPED_BODY = json.dumps({"name": "widget", "price": 9.5, "tags": ["a", "b", "c"]}).encode()
TYPED_ANSWER = {"id": 42, "name": "widget", "price": 9.5, "tags": ["a", "b", "c"], "q": "hello",
                "limit": 5}
WS_MESSAGE = b"0123456789abcdef" * 64  # 1 KiB of text

SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario("plaintext", "GET / -> 200 'Hello, world!', 64 keep-alive connections",
                 (*each_server(HELLO, WITH_DAPHNE), Stack("canned", "canned", HELLO))),
        Scenario("pipelined", "as plaintext, 16 requests pipelined per connection",
                 (*each_server(HELLO), Stack("canned", "canned", HELLO)), pipeline=16),
        Scenario("post-echo", "POST / with a 10 KiB body -> 200 with the same body, 64 connections",
                 each_server("benchmarks.apps.echo:app"),
                 Request("POST", "/", ECHO_BODY, "application/octet-stream", ECHO_BODY)),
        Scenario("streaming", "GET / -> 1 MiB streamed in 16 chunks of 64 KiB, 16 connections",
                 each_server("benchmarks.apps.stream:app"), Request(expected=stream.BODY),
                 connections=16),
        Scenario("h2-1x100", "HTTP/2 without TLS (h2c), GET / -> 'Hello, world!', h2load: "
                 "1 connection x 100 concurrent streams", each_server(HELLO, H2_SERVERS),
                 load="h2load", mode="h2c", connections=1, streams=100),
        Scenario("h2-16x10", "as h2-1x100, h2load: 16 connections x 10 concurrent streams",
                 each_server(HELLO, H2_SERVERS), load="h2load", mode="h2c", connections=16,
                 streams=10),
        Scenario("websocket", "WebSocket echo: 64 clients, each sends 1 KiB of text and waits "
                 "for the echo", each_server("benchmarks.apps.ws_echo:app", WITH_DAPHNE),
                 Request(path="/", body=WS_MESSAGE, expected=WS_MESSAGE), load="websocket",
                 mode="websocket"),
        Scenario("websocket-deflate", "as websocket, with permessage-deflate (the client "
                 "compresses, as browsers do)",
                 each_server("benchmarks.apps.ws_echo:app", ("dartle", "uvicorn")),
                 Request(path="/", body=WS_MESSAGE, expected=WS_MESSAGE), load="websocket",
                 mode="websocket", deflate=True),
        Scenario("framework-plaintext", "framework app: GET /plaintext -> 'Hello, world!' "
                 "(text/plain), 64 connections", FRAMEWORK_STACKS,
                 Request(path="/plaintext"), comparisons=FRAMEWORK_PAIRS),
        Scenario("framework-json", "framework app: GET /json -> {\"message\": \"Hello, world!\"}, "
                 "64 connections", FRAMEWORK_STACKS,
                 Request(path="/json", expected=b'{"message":"Hello, world!"}', json=True),
                 comparisons=FRAMEWORK_PAIRS),
        Scenario("framework-typed", "framework app: POST /items/42?q=hello&limit=5, JSON body "
                 "and response model, 64 connections",
                 tuple(s for s in FRAMEWORK_STACKS if not s.name.startswith("starlette")),
                 Request("POST", TYPED_PATH, TYPED_BODY, "application/json",
                         json.dumps(TYPED_ANSWER).encode(), json=True),
                 comparisons=versus(("dartle", "dartle on uvicorn"), ["fastapi on uvicorn"])),
        Scenario("workers", "plaintext from 1 and from 2 worker processes; server and wrk share "
                 "both cores", WORKER_STACKS, pinning="shared", comparisons=WORKER_PAIRS),
        tfb("tfb-db", "single query: GET /db", "/db", verify.check_single_world),
        tfb("tfb-queries", "20 queries: GET /queries?queries=20", "/queries?queries=20",
            functools.partial(verify.check_worlds, count=20)),
        tfb("tfb-fortunes", "fortunes: GET /fortunes (Jinja2, sorted in the app)", "/fortunes",
            verify.check_fortunes),
        tfb("tfb-updates", "20 updates: GET /updates?queries=20", "/updates?queries=20",
            functools.partial(verify.check_worlds, count=20)),
        tfb("tfb-cached", "cached worlds: GET /cached-worlds?count=100",
            "/cached-worlds?count=100", functools.partial(verify.check_worlds, count=100)),
        Scenario("idle", "memory: 10,000 idle keep-alive connections (each served one GET /), "
                 "server RSS before and after", each_server(HELLO, WITH_DAPHNE), load="idle",
                 mode="idle",
                 connections=10_000),
    )
}
