"""`dartle check module:app`: try an app the way a server would, and say what is wrong.

In one process, without sockets: import the app (as `dartle run` would), run its lifespan
startup, send it a GET (and a WebSocket handshake when it has a WebSocket route we can
find), run its lifespan shutdown. Every event both ways goes through the strict ASGI
checker (dartle.asgi.validate), so a broken rule is reported with the rule's words.
Each step has a time limit; the exit status is 1 when anything is wrong.
"""

from __future__ import annotations

import asyncio
import re
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dartle.asgi.types import ASGIApp, Message, Scope
from dartle.asgi.validate import ASGIViolation, StrictASGIMiddleware
from dartle.config import Config

_PARAM = re.compile(r"\{([^}:]+)(?::([^}]+))?\}")


@dataclass
class Report:
    """What the check found, line by line: ("ok" | "note" | "problem", text)."""

    lines: list[tuple[str, str]] = field(default_factory=list)
    echo: Callable[[str], None] | None = None

    def add(self, kind: str, text: str) -> None:
        self.lines.append((kind, text))
        if self.echo is not None:
            label = {"ok": "ok", "note": "note", "problem": "PROBLEM"}[kind]
            self.echo(f"  {label:<8} {text}")

    def ok(self, text: str) -> None:
        self.add("ok", text)

    def note(self, text: str) -> None:
        self.add("note", text)

    def problem(self, text: str) -> None:
        self.add("problem", text)

    @property
    def problems(self) -> int:
        return sum(1 for kind, _ in self.lines if kind == "problem")


def run_check(config: Config, *, path: str = "/", websocket: str | None = None, timeout: float = 10.0,
              echo: Callable[[str], None] = print) -> int:
    """Check `config.app`; print the report through `echo`; returns the exit status.

    `websocket` names a path for the handshake when the app's routes cannot be seen
    (a plain ASGI app); otherwise the first WebSocket route found is used.
    """
    from dartle.server.importer import AppLoadError, load_app

    report = Report(echo=echo)
    if config.app is None:
        echo("Error: no app given: pass module:attribute (e.g. main:app)")
        return 1
    echo(f"dartle check {config.app}")
    try:
        app = load_app(config.app, config.factory, config.app_dir, config.interface, False)
    except AppLoadError as exc:
        report.problem(f"cannot load the app: {exc}")
    else:
        report.ok(f"imported {config.app}")
        checker = AppChecker(app, report, lifespan=config.lifespan, timeout=timeout)
        asyncio.run(checker.run(path, [websocket] if websocket else websocket_paths(app)))
    count = report.problems
    echo("All checks passed." if not count else f"{count} problem{'s' if count > 1 else ''} found.")
    return 1 if count else 0


class AppChecker:
    """Drives one app through lifespan, HTTP and WebSocket, behind the strict checker."""

    def __init__(self, app: ASGIApp, report: Report, *, lifespan: str, timeout: float) -> None:
        self.report = report
        self.strict = StrictASGIMiddleware(app, on_violation=self._violation)
        self.lifespan = lifespan
        self.timeout = timeout
        self.state: dict[str, Any] = {}

    def _violation(self, violation: ASGIViolation) -> None:
        self.report.problem(str(violation))

    def _failed(self, what: str, exc: BaseException) -> None:
        if isinstance(exc, ASGIViolation):
            return  # reported when raised
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        at = f" (at {where.filename}:{where.lineno})" if where else ""
        self.report.problem(f"{what} raised {type(exc).__name__}: {exc}{at}")

    async def run(self, path: str, ws_paths: list[str]) -> None:
        lifespan = _LifespanRun(self) if self.lifespan != "off" else None
        if lifespan is not None and not await lifespan.startup():
            return
        await self.http_get(path)
        if ws_paths:
            await self.websocket(ws_paths[0])
        else:
            self.report.note("no WebSocket route found (name one with --websocket PATH): "
                             "WebSocket not checked")
        if lifespan is not None:
            await lifespan.shutdown()

    # -- HTTP -----------------------------------------------------------------------------

    async def http_get(self, target: str) -> None:
        path, _, query = target.partition("?")
        scope = _scope("http", path, query, self.state)
        scope.update(method="GET", scheme="http")
        sent: list[Message] = []
        finished = asyncio.Event()
        asked = False

        async def receive() -> Message:
            nonlocal asked
            if not asked:
                asked = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await finished.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)
            if message.get("type") == "http.response.body" and not message.get("more_body", False):
                finished.set()

        what = f"GET {target}"
        if not await self._call(what, scope, receive, send):
            return
        start = next((m for m in sent if m.get("type") == "http.response.start"), None)
        if start is None:
            self.report.problem(f"{what} returned without sending a response")
            return
        body = b"".join(m.get("body", b"") for m in sent if m.get("type") == "http.response.body"
                        and isinstance(m.get("body", b""), bytes))
        status = start.get("status")
        summary = f"{what} -> {status} ({len(body)} bytes)"
        if isinstance(status, int) and status >= 500:
            self.report.problem(f"{summary}: a server error")
        elif status == 404:
            self.report.note(f"{summary}: nothing there; check another path with --path")
        else:
            self.report.ok(summary)

    # -- WebSocket ------------------------------------------------------------------------

    async def websocket(self, path: str) -> None:
        scope = _scope("websocket", path, "", self.state)
        scope.update(scheme="ws", subprotocols=[])
        scope["headers"] += [(b"connection", b"upgrade"), (b"upgrade", b"websocket"),
                             (b"sec-websocket-version", b"13"),
                             (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ==")]
        answered = asyncio.Event()
        outcome: list[str] = []
        connected = False

        async def receive() -> Message:
            nonlocal connected
            if not connected:
                connected = True
                return {"type": "websocket.connect"}
            await answered.wait()
            return {"type": "websocket.disconnect", "code": 1000, "reason": ""}

        async def send(message: Message) -> None:
            kind = message.get("type")
            if not outcome and kind in ("websocket.accept", "websocket.close",
                                        "websocket.http.response.start"):
                outcome.append(str(kind))
                answered.set()

        what = f"WebSocket {path}"
        if not await self._call(what, scope, receive, send):
            return
        if not outcome:
            self.report.problem(f"{what}: the app returned without accepting or closing the handshake")
        elif outcome[0] == "websocket.accept":
            self.report.ok(f"{what}: accepted, then ended on the client's close")
        else:
            self.report.note(f"{what}: the app refused the handshake ({outcome[0]})")

    # -- running the app ------------------------------------------------------------------

    async def _call(self, what: str, scope: Scope, receive: Any, send: Any) -> bool:
        """Run one app call to its end within the time limit; False (reported) if it failed."""
        try:
            await asyncio.wait_for(self.strict(scope, receive, send), self.timeout)
        except asyncio.TimeoutError:
            self.report.problem(f"{what}: the app had not finished after {self.timeout:g}s")
            return False
        except Exception as exc:
            self._failed(what, exc)
            return False
        return True


class _LifespanRun:
    """The lifespan scope in a task of its own, driven one event at a time."""

    def __init__(self, checker: AppChecker) -> None:
        self.checker = checker
        self.report = checker.report
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.answers: asyncio.Queue[Message] = asyncio.Queue()
        self.received = 0
        self.task: asyncio.Task[None] | None = None
        self.supported = True

    async def _receive(self) -> Message:
        self.received += 1
        return await self.inbox.get()

    async def _send(self, message: Message) -> None:
        await self.answers.put(message)

    async def _answer(self) -> Message | BaseException | None:
        """The app's answer, the exception it ended with, or None if it returned silently."""
        assert self.task is not None
        waiter = asyncio.ensure_future(self.answers.get())
        try:
            await asyncio.wait((waiter, self.task), timeout=self.checker.timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not waiter.done():
                waiter.cancel()
        if waiter.done() and not waiter.cancelled():
            return waiter.result()
        if self.task.done():
            return self.task.exception()
        raise asyncio.TimeoutError

    async def startup(self) -> bool:
        scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"},
                        "state": self.checker.state}
        self.task = asyncio.ensure_future(self.checker.strict(scope, self._receive, self._send))
        await self.inbox.put({"type": "lifespan.startup"})
        try:
            answer = await self._answer()
        except asyncio.TimeoutError:
            self.report.problem(f"lifespan startup: no answer within {self.checker.timeout:g}s")
            return False
        if isinstance(answer, dict) and answer.get("type") == "lifespan.startup.complete":
            self.report.ok("lifespan startup complete")
            return True
        if isinstance(answer, dict) and answer.get("type") == "lifespan.startup.failed":
            self.report.problem(f"lifespan startup failed: {answer.get('message') or '(no message)'}")
            return False
        self.supported = False
        mode = self.checker.lifespan
        if isinstance(answer, BaseException) and self.received:
            # Raising before even asking for the event is how an app says "no lifespan";
            # raising after is a startup that crashed.
            self.checker._failed("lifespan startup", answer)
            return False
        if mode == "on":
            how = f": it raised {type(answer).__name__}: {answer}" if answer is not None else ""
            self.report.problem(f"lifespan startup: the app does not support lifespan (--lifespan on){how}")
            return False
        self.report.note("the app does not support lifespan; servers go on without it")
        return True

    async def shutdown(self) -> None:
        if not self.supported or self.task is None:
            return
        if self.task.done():
            exc = self.task.exception()
            if exc is not None:
                self.checker._failed("lifespan", exc)
            else:
                self.report.problem("lifespan: the app returned before lifespan.shutdown")
            return
        await self.inbox.put({"type": "lifespan.shutdown"})
        try:
            answer = await self._answer()
        except asyncio.TimeoutError:
            self.report.problem(f"lifespan shutdown: no answer within {self.checker.timeout:g}s")
            self.task.cancel()
            return
        if isinstance(answer, dict) and answer.get("type") == "lifespan.shutdown.complete":
            self.report.ok("lifespan shutdown complete")
        elif isinstance(answer, dict) and answer.get("type") == "lifespan.shutdown.failed":
            self.report.problem(f"lifespan shutdown failed: {answer.get('message') or '(no message)'}")
        elif isinstance(answer, BaseException):
            self.checker._failed("lifespan shutdown", answer)
        else:
            self.report.problem("lifespan shutdown: the app returned without answering")


def _scope(kind: str, path: str, query: str, state: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": kind,
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"user-agent", b"dartle-check"), (b"accept", b"*/*")],
        "client": ["127.0.0.1", 50000],
        "server": ["127.0.0.1", 8000],
        "state": state.copy(),
        "extensions": {},
    }


def websocket_paths(app: Any) -> list[str]:
    """Paths of the WebSocket routes we can see in `app` (dartle, Starlette, FastAPI...),
    looking through middleware (`.app`) and mounts; path parameters get sample values."""
    return list(dict.fromkeys(_walk(app, "", set())))


def _walk(app: Any, prefix: str, seen: set[int]) -> Iterator[str]:
    # Follow wrappers (middleware keep the app they wrap in `.app`) until something has routes.
    for _ in range(20):
        if app is None or id(app) in seen:
            return
        seen.add(id(app))
        routes = _routes(app)
        if routes is not None:
            break
        app = getattr(app, "app", None)
    else:
        return
    for route in routes:
        path = getattr(route, "path", None)
        if not isinstance(path, str):
            continue
        if "WebSocket" in type(route).__name__:
            yield prefix + _PARAM.sub(_sample, path)
        elif type(route).__name__ == "Mount":
            yield from _walk(getattr(route, "app", None), prefix + _PARAM.sub(_sample, path), seen)


def _routes(app: Any) -> list[Any] | None:
    for holder in (app, getattr(app, "router", None)):
        try:
            routes = getattr(holder, "routes", None)
        except Exception:
            return None
        if isinstance(routes, list):
            return routes
    return None


def _sample(match: re.Match[str]) -> str:
    return "1" if match.group(2) in ("int", "float") else "check"
