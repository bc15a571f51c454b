"""A strict ASGI checker: every scope and event, both ways, against the specification.

    from dartle.asgi.validate import StrictASGIMiddleware
    app = StrictASGIMiddleware(app)          # or: dartle run --strict-asgi module:app

The wrapper sits between a server and an app. It checks the scope and every event the
server hands the app through `receive()` (types, required keys, order), and every event
the app hands to `send()`, before passing it on. A broken rule raises `ASGIViolation`,
whose message names the rule (an id from `RULES` and its text) and the side that broke
it: "server" for the scope and received events, "app" for sent events and for how the
app ends. An app-side violation is raised from `send()` (the event never reaches the
server), a server-side one from `receive()` or before the app is called; either way the
server sees the app fail with that message in its log.

Rules come from asgiref's specs (asgi.rst, www.rst 2.5, lifespan.rst 2.0) and its
extensions page; a few are HTTP or WebSocket protocol rules an event can break on its
own (header values with CR/LF, close codes an endpoint may not send), marked "HTTP" or
"RFC 6455" in their text. Where the spec says "list", tuples are accepted too: every
major framework sends them and every server reads them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from typing import Any

from dartle.asgi.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["RULES", "ASGIViolation", "StrictASGIMiddleware"]

RULES: dict[str, str] = {
    # any scope or event
    "scope.type": "the scope is a dict whose 'type' is 'http', 'websocket' or 'lifespan'",
    "scope.asgi": "scope['asgi'] is a dict with 'version' '2.0' or '3.0' (str) and optional "
                  "'spec_version' (str)",
    "scope.key": "a scope key has the type the spec gives it",
    "event.dict": "an event is a dict with str keys and a str 'type'",
    "event.values": "event values are bytes, str, int (64-bit), finite float, list, dict with "
                    "str keys, bool or None",
    "event.key": "an event key has the type the spec gives it",
    "event.unknown": "an event type belongs to the scope's protocol (or to an extension the "
                     "server advertised)",
    "extension.advertised": "an extension event is sent only when scope['extensions'] names it",
    "headers.shape": "headers are an iterable of [name, value] pairs of bytes",
    "headers.lowercase": "response header names are lowercased",
    "headers.pseudo": "no HTTP/2 pseudo headers (':name') in ASGI headers",
    "headers.value": "HTTP: a header value holds no CR, LF or NUL; a name is a non-empty token",
    # http
    "http.request.order": "http.request events stop after the one with more_body=False, and "
                          "none follow http.disconnect",
    "http.response.start.once": "http.response.start is sent once, before any body",
    "http.response.start.status": "http.response.start status is an int from 200 to 999 (1xx "
                                  "are not final responses)",
    "http.response.body.order": "http.response.body follows http.response.start",
    "http.response.trailers.order": "http.response.trailers follows the final body of a response "
                                    "started with trailers=True",
    "http.response.extension.order": "an extension event (pathsend, zerocopysend, early_hint, "
                                     "push) comes after http.response.start and before the "
                                     "final body; pathsend replaces the body entirely",
    "http.response.debug.order": "http.response.debug is sent once, before http.response.start",
    "http.response.incomplete": "an HTTP app finishes its response (start, then a body with "
                                "more_body=False) before returning, unless the client left",
    # websocket
    "websocket.connect.first": "websocket.connect is the first event received, and only once",
    "websocket.receive.after-accept": "websocket.receive comes only after the app accepted",
    "websocket.message.one-of": "exactly one of 'bytes' and 'text' is non-None",
    "websocket.accept.once": "websocket.accept is sent once, before any other websocket event",
    "websocket.accept.subprotocol": "the accepted subprotocol is one the client offered",
    "websocket.accept.headers": "websocket.accept headers need spec_version 2.1+ and must not "
                                "include sec-websocket-protocol",
    "websocket.send.order": "websocket.send comes after websocket.accept and before "
                            "websocket.close",
    "websocket.close.code": "RFC 6455: an endpoint closes with 1000-1003, 1007-1014 or "
                            "3000-4999, and a reason of at most 123 UTF-8 bytes",
    "websocket.close.once": "nothing is sent after websocket.close",
    "websocket.http.response.order": "websocket.http.response.* replaces the handshake: only "
                                     "before accept, start once, then body events",
    # lifespan
    "lifespan.order": "lifespan.startup comes first, lifespan.shutdown after it, each once",
    "lifespan.answer": "lifespan.startup.* answers lifespan.startup and lifespan.shutdown.* "
                       "answers lifespan.shutdown, once each",
}

_INT64 = 2**63
_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ASGI_VERSIONS = ("2.0", "3.0")
_HTTP_VERSIONS = ("1.0", "1.1", "2", "3")
_CLOSE_CODES = frozenset((1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)))


class ASGIViolation(Exception):
    """A broken ASGI rule; `rule` is its id in RULES, `side` is "app" or "server"."""

    def __init__(self, rule: str, side: str, detail: str) -> None:
        self.rule = rule
        self.side = side
        self.detail = detail
        super().__init__(f"ASGI rule {rule!r} broken by the {side}: {detail} (rule: {RULES[rule]})")


class StrictASGIMiddleware:
    """Wrap `app` so that every scope and event is checked against the ASGI spec.

    ignore: rule ids (keys of RULES) not to enforce, e.g. {"headers.lowercase"} for an
        app known to send mixed-case header names (Django's ASGIHandler does).
    on_violation: called with each ASGIViolation before it is raised (for reports).
    `violations` keeps the ones seen, most recent last (at most 100).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        ignore: Iterable[str] = (),
        on_violation: Callable[[ASGIViolation], None] | None = None,
    ) -> None:
        unknown = sorted(set(ignore) - set(RULES))
        if unknown:
            raise ValueError(f"unknown ASGI rule id(s): {', '.join(unknown)}")
        self.app = app
        self.ignore = frozenset(ignore)
        self.on_violation = on_violation
        self.violations: list[ASGIViolation] = []

    def violation(self, rule: str, side: str, detail: str) -> None:
        """Record and raise a violation of `rule` (unless it is ignored)."""
        if rule in self.ignore:
            return
        exc = ASGIViolation(rule, side, detail)
        self.violations.append(exc)
        del self.violations[:-100]
        if self.on_violation is not None:
            self.on_violation(exc)
        raise exc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type") if isinstance(scope, dict) else None
        checker_class = _CHECKERS.get(kind) if isinstance(kind, str) else None
        if checker_class is None:
            self.violation("scope.type", "server", f"scope type {kind!r} (scope {type(scope).__name__})")
            return
        checker = checker_class(self, scope, receive, send)
        await self.app(scope, checker.receive, checker.send)
        checker.app_returned()


class _Checker:
    """Shared checks; one subclass per protocol holds that protocol's state machine."""

    protocol = ""
    receive_types: frozenset[str] = frozenset()

    def __init__(self, owner: StrictASGIMiddleware, scope: Scope, receive: Receive, send: Send) -> None:
        self.owner = owner
        self.scope = scope
        self._receive = receive
        self._send = send
        self.disconnected = False  # the client left: the app may stop where it is
        self.check_scope(scope)

    # -- the callables handed to the app ------------------------------------------------

    async def receive(self) -> Message:
        message = await self._receive()
        if self.check_event(message, "server"):
            self.received(message)
        return message

    async def send(self, message: Message) -> None:
        if self.check_event(message, "app"):
            self.sent(message)
        try:
            await self._send(message)
        except OSError:
            self.disconnected = True  # spec 2.4: the server's way of saying the client left
            raise

    def violation(self, rule: str, side: str, detail: str) -> None:
        self.owner.violation(rule, side, detail)

    # -- per protocol -------------------------------------------------------------------

    def received(self, message: Message) -> None:
        raise NotImplementedError

    def sent(self, message: Message) -> None:
        raise NotImplementedError

    def app_returned(self) -> None:
        """The app returned normally: was its protocol finished?"""

    # -- scope ---------------------------------------------------------------------------

    def check_scope(self, scope: Scope) -> None:
        for key in scope:
            if not isinstance(key, str):
                self.violation("scope.key", "server", f"scope key {key!r} is not a str")
        asgi = scope.get("asgi")
        if not isinstance(asgi, dict) or asgi.get("version") not in _ASGI_VERSIONS:
            self.violation("scope.asgi", "server", f"scope['asgi'] is {asgi!r}")
        elif "spec_version" in asgi and not isinstance(asgi["spec_version"], str):
            self.violation("scope.asgi", "server", f"spec_version {asgi['spec_version']!r} is not a str")
        if "state" in scope and not isinstance(scope["state"], dict):
            self.scope_key("state", "a dict")
        extensions = scope.get("extensions")
        if extensions is not None and not (
            isinstance(extensions, dict) and all(isinstance(k, str) for k in extensions)
        ):
            self.scope_key("extensions", "a dict with str keys")

    def scope_key(self, key: str, expected: str) -> None:
        value = self.scope.get(key, "<missing>")
        self.violation("scope.key", "server", f"{self.protocol} scope[{key!r}] must be {expected}, "
                                              f"not {value!r}")

    def check_connection_scope(self, scope: Scope, default_scheme: str) -> None:
        """What HTTP and WebSocket scopes share: path, query, headers, addresses."""
        if not isinstance(scope.get("path"), str):
            self.scope_key("path", "a str (percent-decoded)")
        if scope.get("raw_path") is not None and not isinstance(scope["raw_path"], bytes):
            self.scope_key("raw_path", "bytes or None")
        if "query_string" in scope and type(scope["query_string"]) is not bytes:
            self.scope_key("query_string", "bytes (still percent-encoded)")
        if "root_path" in scope and not isinstance(scope["root_path"], str):
            self.scope_key("root_path", "a str")
        if "scheme" in scope and not (isinstance(scope["scheme"], str) and scope["scheme"]):
            self.scope_key("scheme", f"a non-empty str such as {default_scheme!r}")
        self.check_headers(scope.get("headers"), "server", "scope headers", response=False)
        client = scope.get("client")
        if client is not None and not (
            _pair(client) and isinstance(client[0], str) and _is_int(client[1])
        ):
            self.scope_key("client", "[host: str, port: int] or None")
        server = scope.get("server")
        if server is not None and not (
            _pair(server) and isinstance(server[0], str) and (server[1] is None or _is_int(server[1]))
        ):
            self.scope_key("server", "[host: str, port: int], [unix path: str, None] or None")

    # -- events --------------------------------------------------------------------------

    def check_event(self, message: Any, side: str) -> bool:
        """Shape and value types of any event; False if it cannot be checked further."""
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            self.violation("event.dict", side, f"{message!r:.80} is not a dict with a str 'type'")
            return False
        kind = message["type"]
        if not _is_extension_event(kind):
            problem = _value_problem(message, kind)
            if problem:
                self.violation("event.values", side, problem)
        return True

    def event_key(self, message: Message, key: str, expected: str, side: str) -> None:
        self.violation("event.key", side, f"{message['type']} {key!r} must be {expected}, not "
                                          f"{message.get(key, '<missing>')!r}")

    def check_bool(self, message: Message, key: str, side: str) -> bool:
        value = message.get(key, False)
        if type(value) is not bool:
            self.event_key(message, key, "a bool", side)
        return bool(value)

    def check_bytes(self, message: Message, key: str, side: str, *, optional: bool = True) -> None:
        value = message.get(key, b"" if optional else None)
        if type(value) is not bytes:
            self.event_key(message, key, "bytes", side)

    def check_headers(self, headers: Any, side: str, where: str, *, response: bool = True) -> None:
        if headers is None and response:
            return
        try:
            items = list(headers)
        except TypeError:
            self.violation("headers.shape", side, f"{where} are {headers!r}, not an iterable")
            return
        for item in items:
            if isinstance(item, (bytes, str, dict)) or not _pair(item):
                self.violation("headers.shape", side, f"{where}: {item!r} is not a [name, value] pair")
                continue
            name, value = item
            if type(name) is not bytes or type(value) is not bytes:
                self.violation("headers.shape", side, f"{where}: {item!r} is not a pair of bytes")
                continue
            if name[:1] == b":":
                self.violation("headers.pseudo", side, f"{where}: {name!r}")
            if not name or not _TOKEN.issuperset(name):
                self.violation("headers.value", side, f"{where}: {name!r} is not a header name")
            if b"\r" in value or b"\n" in value or b"\0" in value:
                self.violation("headers.value", side, f"{where}: {name!r} has {value!r}")
            if response and name != name.lower():
                self.violation("headers.lowercase", side, f"{where}: {name!r}")

    def require_extension(self, message: Message, extension: str) -> None:
        extensions = self.scope.get("extensions") or {}
        if extension not in extensions:
            self.violation("extension.advertised", "app",
                           f"{message['type']} sent but scope['extensions'] has no {extension!r}")

    def unknown(self, message: Message, side: str) -> None:
        self.violation("event.unknown", side, f"{message['type']!r} in a {self.protocol} scope")


# -- HTTP ---------------------------------------------------------------------------------

START, STARTED, STREAMING, TRAILERS, DONE = range(5)
_STATE_NAMES = ("before http.response.start", "after http.response.start",
                "while streaming the body", "waiting for trailers", "after the response completed")
_HTTP_EXTENSIONS = {
    "http.response.pathsend": "http.response.pathsend",
    "http.response.zerocopysend": "http.response.zerocopysend",
    "http.response.early_hint": "http.response.early_hint",
    "http.response.push": "http.response.push",
}


class _HTTPChecker(_Checker):
    protocol = "http"

    def __init__(self, owner: StrictASGIMiddleware, scope: Scope, receive: Receive, send: Send) -> None:
        self.state = START
        self.trailers = False
        self.body_done = False
        self.debug_sent = False
        super().__init__(owner, scope, receive, send)

    def check_scope(self, scope: Scope) -> None:
        super().check_scope(scope)
        if scope.get("http_version") not in _HTTP_VERSIONS:
            self.scope_key("http_version", "one of " + ", ".join(map(repr, _HTTP_VERSIONS)))
        method = scope.get("method")
        if not (isinstance(method, str) and method and method == method.upper()):
            self.scope_key("method", "an uppercased, non-empty str")
        if type(scope.get("query_string")) is not bytes:
            self.scope_key("query_string", "bytes (still percent-encoded)")
        self.check_connection_scope(scope, "http")

    def received(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.request":
            if self.disconnected or self.body_done:
                after = "http.disconnect" if self.disconnected else "the final body chunk"
                self.violation("http.request.order", "server", f"http.request after {after}")
            self.check_bytes(message, "body", "server")
            self.body_done = not self.check_bool(message, "more_body", "server")
        elif kind == "http.disconnect":
            self.disconnected = True
        else:
            self.unknown(message, "server")

    def sent(self, message: Message) -> None:
        kind = message["type"]
        state = self.state
        if kind == "http.response.start":
            if state != START:
                self.violation("http.response.start.once", "app",
                               f"http.response.start sent {_STATE_NAMES[state]}")
            status = message.get("status")
            if not _final_status(status):
                self.violation("http.response.start.status", "app", f"status {status!r}")
            self.check_headers(message.get("headers"), "app", "http.response.start headers")
            self.trailers = self.check_bool(message, "trailers", "app")
            self.state = STARTED
        elif kind == "http.response.body":
            if state == START or state == TRAILERS:
                self.violation("http.response.body.order", "app", f"http.response.body sent "
                                                                  f"{_STATE_NAMES[state]}")
            self.check_bytes(message, "body", "app")
            more = self.check_bool(message, "more_body", "app")
            if state in (STARTED, STREAMING):
                self.state = STREAMING if more else (TRAILERS if self.trailers else DONE)
        elif kind == "http.response.trailers":
            self.require_extension(message, "http.response.trailers")
            if state != TRAILERS:
                detail = ("the response was not started with trailers=True" if not self.trailers
                          else f"http.response.trailers sent {_STATE_NAMES[state]}")
                self.violation("http.response.trailers.order", "app", detail)
            self.check_headers(message.get("headers"), "app", "http.response.trailers headers")
            if not self.check_bool(message, "more_trailers", "app"):
                self.state = DONE
        elif kind in _HTTP_EXTENSIONS:
            self._extension(message, kind)
        elif kind == "http.response.debug":
            self.require_extension(message, "http.response.debug")
            if state != START or self.debug_sent:
                self.violation("http.response.debug.order", "app", f"sent {_STATE_NAMES[state]}")
            self.debug_sent = True
        else:
            self.unknown(message, "app")

    def _extension(self, message: Message, kind: str) -> None:
        self.require_extension(message, _HTTP_EXTENSIONS[kind])
        state = self.state
        if kind == "http.response.pathsend":
            if state != STARTED:
                self.violation("http.response.extension.order", "app", f"pathsend {_STATE_NAMES[state]}")
            path = message.get("path")
            if not (isinstance(path, str) and os.path.isabs(path)):
                self.event_key(message, "path", "an absolute str path", "app")
            self.state = TRAILERS if self.trailers else DONE
            return
        if state not in (STARTED, STREAMING):
            self.violation("http.response.extension.order", "app", f"{kind} {_STATE_NAMES[state]}")
        if kind == "http.response.zerocopysend":
            if not callable(getattr(message.get("file"), "fileno", None)):
                self.event_key(message, "file", "a file object with a fileno()", "app")
            for key in ("offset", "count"):
                if message.get(key) is not None and not _is_int(message[key]):
                    self.event_key(message, key, "an int", "app")
            more = self.check_bool(message, "more_body", "app")
            self.state = STREAMING if more else (TRAILERS if self.trailers else DONE)
        elif kind == "http.response.early_hint":
            links = message.get("links")
            if not isinstance(links, (list, tuple)) or not all(type(x) is bytes for x in links):
                self.event_key(message, "links", "a list of bytes", "app")
        else:  # push
            if not isinstance(message.get("path"), str):
                self.event_key(message, "path", "a str", "app")
            self.check_headers(message.get("headers", ()), "app", "http.response.push headers")

    def app_returned(self) -> None:
        if self.state != DONE and not self.disconnected:
            self.violation("http.response.incomplete", "app",
                           f"the app returned {_STATE_NAMES[self.state]}")


# -- WebSocket ----------------------------------------------------------------------------

CONNECTING, HANDSHAKE, ACCEPTED, DENYING, CLOSED = range(5)


class _WebSocketChecker(_Checker):
    protocol = "websocket"

    def __init__(self, owner: StrictASGIMiddleware, scope: Scope, receive: Receive, send: Send) -> None:
        self.connected = False  # websocket.connect received
        self.state = CONNECTING
        super().__init__(owner, scope, receive, send)

    def check_scope(self, scope: Scope) -> None:
        super().check_scope(scope)
        if scope.get("http_version", "1.1") not in ("1.1", "2"):
            self.scope_key("http_version", "'1.1' or '2'")
        self.check_connection_scope(scope, "ws")
        subprotocols = scope.get("subprotocols", [])
        if not isinstance(subprotocols, (list, tuple)) or not all(isinstance(s, str) for s in subprotocols):
            self.scope_key("subprotocols", "a list of str")

    def received(self, message: Message) -> None:
        kind = message["type"]
        if kind == "websocket.connect":
            if self.connected:
                self.violation("websocket.connect.first", "server", "websocket.connect received twice")
            self.connected = True
        elif not self.connected:
            self.violation("websocket.connect.first", "server", f"{kind} before websocket.connect")
        elif kind == "websocket.receive":
            if self.state != ACCEPTED:
                self.violation("websocket.receive.after-accept", "server",
                               "websocket.receive before the app accepted")
            self._one_of(message, "server")
        elif kind == "websocket.disconnect":
            if not _is_int(message.get("code")):
                self.event_key(message, "code", "an int close code", "server")
            if message.get("reason") is not None and not isinstance(message["reason"], str):
                self.event_key(message, "reason", "a str or None", "server")
            self.disconnected = True
        else:
            self.unknown(message, "server")

    def sent(self, message: Message) -> None:
        kind = message["type"]
        state = self.state
        if state == CLOSED:
            self.violation("websocket.close.once", "app", f"{kind} after websocket.close")
        if kind == "websocket.accept":
            if state != CONNECTING:
                self.violation("websocket.accept.once", "app", "websocket.accept sent twice or after "
                                                               "a denial response")
            self._accept(message)
            self.state = ACCEPTED
        elif kind == "websocket.send":
            if state != ACCEPTED:
                self.violation("websocket.send.order", "app", "websocket.send before websocket.accept")
            self._one_of(message, "app")
        elif kind == "websocket.close":
            code = message.get("code", 1000)
            if not _is_int(code) or code not in _CLOSE_CODES:
                self.violation("websocket.close.code", "app", f"close code {code!r}")
            reason = message.get("reason")
            if reason is not None and not isinstance(reason, str):
                self.event_key(message, "reason", "a str or None", "app")
            elif reason and len(reason.encode("utf-8")) > 123:
                self.violation("websocket.close.code", "app",
                               f"close reason of {len(reason.encode('utf-8'))} UTF-8 bytes")
            if state == DENYING:
                self.violation("websocket.http.response.order", "app",
                               "websocket.close in the middle of a denial response")
            self.state = CLOSED
        elif kind in ("websocket.http.response.start", "websocket.http.response.body"):
            self._denial(message, kind)
        else:
            self.unknown(message, "app")

    def _accept(self, message: Message) -> None:
        subprotocol = message.get("subprotocol")
        if subprotocol is not None:
            if not isinstance(subprotocol, str):
                self.event_key(message, "subprotocol", "a str or None", "app")
            elif subprotocol not in self.scope.get("subprotocols", ()):
                self.violation("websocket.accept.subprotocol", "app",
                               f"{subprotocol!r} is not in {self.scope.get('subprotocols', [])!r}")
        headers = message.get("headers")
        if headers:
            spec = (self.scope.get("asgi") or {}).get("spec_version", "2.0")
            if _version(spec) < (2, 1):
                self.violation("websocket.accept.headers", "app",
                               f"accept headers, but the server's spec_version is {spec!r}")
            self.check_headers(headers, "app", "websocket.accept headers")
            if any(_pair(h) and h[0] == b"sec-websocket-protocol" for h in headers):
                self.violation("websocket.accept.headers", "app",
                               "sec-websocket-protocol in accept headers (use 'subprotocol')")

    def _denial(self, message: Message, kind: str) -> None:
        self.require_extension(message, "websocket.http.response")
        state = self.state
        if kind == "websocket.http.response.start":
            if state != CONNECTING:
                self.violation("websocket.http.response.order", "app", f"{kind} after the handshake "
                                                                       "was answered")
            status = message.get("status")
            if not _final_status(status):
                self.violation("http.response.start.status", "app", f"status {status!r}")
            self.check_headers(message.get("headers"), "app", f"{kind} headers")
            self.state = DENYING
        else:
            if state != DENYING:
                self.violation("websocket.http.response.order", "app",
                               f"{kind} without websocket.http.response.start")
            self.check_bytes(message, "body", "app")
            if not self.check_bool(message, "more_body", "app"):
                self.state = CLOSED

    def _one_of(self, message: Message, side: str) -> None:
        data, text = message.get("bytes"), message.get("text")
        if (data is None) == (text is None):
            self.violation("websocket.message.one-of", side, f"{message['type']} with bytes={data!r:.40} "
                                                             f"and text={text!r:.40}")
        if data is not None and type(data) is not bytes:
            self.event_key(message, "bytes", "bytes or None", side)
        if text is not None and not isinstance(text, str):
            self.event_key(message, "text", "a str or None", side)


# -- lifespan -----------------------------------------------------------------------------


class _LifespanChecker(_Checker):
    protocol = "lifespan"

    def __init__(self, owner: StrictASGIMiddleware, scope: Scope, receive: Receive, send: Send) -> None:
        self.asked: list[str] = []  # "startup", "shutdown" as received
        self.answered: list[str] = []
        super().__init__(owner, scope, receive, send)

    def received(self, message: Message) -> None:
        kind = message["type"]
        if kind not in ("lifespan.startup", "lifespan.shutdown"):
            self.unknown(message, "server")
            return
        phase = kind.rpartition(".")[2]
        expected = ["startup", "shutdown"][len(self.asked)] if len(self.asked) < 2 else None
        if phase != expected:
            self.violation("lifespan.order", "server", f"{kind} after {self.asked or 'nothing'}")
        self.asked.append(phase)

    def sent(self, message: Message) -> None:
        kind = message["type"]
        phase, _, outcome = kind.removeprefix("lifespan.").partition(".")
        if phase not in ("startup", "shutdown") or outcome not in ("complete", "failed"):
            self.unknown(message, "app")
            return
        if phase not in self.asked or phase in self.answered:
            self.violation("lifespan.answer", "app", f"{kind} after receiving {self.asked or 'nothing'} "
                                                     f"and answering {self.answered or 'nothing'}")
        if message.get("message") is not None and not isinstance(message["message"], str):
            self.event_key(message, "message", "a str", "app")
        self.answered.append(phase)

    def app_returned(self) -> None:
        unanswered = [phase for phase in self.asked if phase not in self.answered]
        if unanswered:
            self.violation("lifespan.answer", "app", f"the app returned without answering "
                                                     f"lifespan.{unanswered[0]}")


_CHECKERS: dict[str, type[_Checker]] = {
    "http": _HTTPChecker,
    "websocket": _WebSocketChecker,
    "lifespan": _LifespanChecker,
}


# -- helpers ------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return type(value) is int and -_INT64 <= value < _INT64


def _final_status(status: Any) -> bool:
    return type(status) is int and 200 <= status <= 999


def _pair(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 2


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return (0,)


def _is_extension_event(kind: str) -> bool:
    # zerocopysend carries a file object and debug arbitrary info: checked key by key
    return kind in ("http.response.zerocopysend", "http.response.debug")


def _value_problem(value: Any, where: str, depth: int = 0) -> str | None:
    """Why `value` is not made of ASGI's allowed types (None if it is)."""
    kind = type(value)
    if kind in (bytes, str, bool) or value is None:
        return None
    if kind is int:
        return None if -_INT64 <= value < _INT64 else f"{where}: int {value} is outside 64 bits"
    if kind is float:
        return None if math.isfinite(value) else f"{where}: float {value} is not finite"
    if depth > 32:
        return f"{where}: nested too deep"
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where}: dict key {key!r} is not a str"
            problem = _value_problem(item, f"{where}[{key!r}]", depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            problem = _value_problem(item, f"{where}[{index}]", depth + 1)
            if problem:
                return problem
        return None
    return f"{where}: {kind.__name__} {value!r:.60} is not an ASGI value type"
