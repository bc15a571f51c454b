"""Small value types shared by requests, responses and middleware.

`Headers` reads a raw ASGI header list in place (no copy, no decoding until asked),
`MutableHeaders` edits one, `URL` and `QueryParams` are immutable views of a request's
address, `State` is an attribute bag over a plain dict (lifespan and request state).
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar, overload
from urllib.parse import SplitResult, parse_qsl, quote, urlencode, urlsplit

__all__ = [
    "URL",
    "Address",
    "Headers",
    "ImmutableMultiDict",
    "MultiDict",
    "MutableHeaders",
    "QueryParams",
    "RawHeaders",
    "State",
]

RawHeaders = list[tuple[bytes, bytes]]
_T = TypeVar("_T")
_V = TypeVar("_V")


class Address(NamedTuple):
    """The peer or server address of a connection."""

    host: str
    port: int | None


# ---------------------------------------------------------------------------
# Headers
# ---------------------------------------------------------------------------


class Headers(Mapping[str, str]):
    """An immutable, case-insensitive multi-dict over a raw ASGI header list.

    Build it from a scope (`Headers(scope=scope)`), from a raw list of `(name, value)`
    byte pairs (`Headers(raw=...)`) or from a mapping of strings. Lookups are
    case-insensitive; `getlist` returns every value of a repeated header in order.
    Names and values are decoded as latin-1, as HTTP requires.
    """

    __slots__ = ("_list",)

    _list: list[Any]

    def __init__(
        self,
        headers: Mapping[str, str] | None = None,
        raw: Iterable[Sequence[bytes]] | None = None,
        scope: Mapping[str, Any] | None = None,
    ) -> None:
        if headers is not None:
            if raw is not None or scope is not None:
                raise TypeError("give only one of 'headers', 'raw' or 'scope'")
            self._list = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        elif raw is not None:
            if scope is not None:
                raise TypeError("give only one of 'headers', 'raw' or 'scope'")
            self._list = raw if isinstance(raw, list) else list(raw)
        elif scope is not None:
            found = scope["headers"]
            # ASGI allows any iterable of pairs; we keep a list so lookups can rescan it.
            self._list = found if isinstance(found, list) else list(found)
        else:
            self._list = []

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        """The underlying list of `(name, value)` byte pairs (lowercased names)."""
        return self._list

    def keys(self) -> KeysView[str]:
        return KeysView(self._as_dict())

    def values(self) -> list[str]:  # type: ignore[override]
        return [v.decode("latin-1") for _, v in self._list]

    def items(self) -> ItemsView[str, str]:
        return ItemsView(self._as_dict())

    def multi_items(self) -> list[tuple[str, str]]:
        """Every `(name, value)` pair in order, repeats included."""
        return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self._list]

    def _as_dict(self) -> dict[str, str]:
        # Repeated names keep their first value, like `get`.
        result: dict[str, str] = {}
        for k, v in self._list:
            result.setdefault(k.decode("latin-1"), v.decode("latin-1"))
        return result

    def getlist(self, key: str) -> list[str]:
        """All values of header `key`, in the order they were received."""
        name = key.lower().encode("latin-1")
        return [v.decode("latin-1") for k, v in self._list if k == name]

    @overload
    def get(self, key: str) -> str | None: ...
    @overload
    def get(self, key: str, default: str | _T) -> str | _T: ...
    def get(self, key: str, default: Any = None) -> Any:
        name = key.lower().encode("latin-1")
        for k, v in self._list:
            if k == name:
                return v.decode("latin-1")
        return default

    def __getitem__(self, key: str) -> str:
        name = key.lower().encode("latin-1")
        for k, v in self._list:
            if k == name:
                return v.decode("latin-1")  # type: ignore[no-any-return]
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        name = key.lower().encode("latin-1")
        return any(k == name for k, _ in self._list)

    def __iter__(self) -> Iterator[str]:
        return iter(self._as_dict())

    def __len__(self) -> int:
        return len(self._as_dict())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return sorted(map(tuple, self._list)) == sorted(map(tuple, other._list))

    __hash__ = None  # type: ignore[assignment]

    def mutablecopy(self) -> MutableHeaders:
        """A `MutableHeaders` over a copy of this list."""
        return MutableHeaders(raw=[(k, v) for k, v in self._list])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.multi_items()!r})"


class MutableHeaders(Headers):
    """Case-insensitive headers that edit their raw list in place.

    `MutableHeaders(scope=message)` edits `message["headers"]` (turned into a list
    first if it was another iterable), which is how middleware rewrites the headers of
    an `http.response.start` event.
    """

    __slots__ = ()

    def __init__(
        self,
        headers: Mapping[str, str] | None = None,
        raw: Iterable[Sequence[bytes]] | None = None,
        scope: Any = None,
    ) -> None:
        super().__init__(headers=headers, raw=raw, scope=scope)
        if scope is not None and scope.get("headers") is not self._list:
            scope["headers"] = self._list

    def __setitem__(self, key: str, value: str) -> None:
        """Set a header, replacing every existing value of that name."""
        name = key.lower().encode("latin-1")
        encoded = value.encode("latin-1")
        found: int | None = None
        lst = self._list
        for i in range(len(lst) - 1, -1, -1):
            if lst[i][0] == name:
                if found is not None:
                    del lst[found]
                found = i
        if found is None:
            lst.append((name, encoded))
        else:
            lst[found] = (name, encoded)

    def __delitem__(self, key: str) -> None:
        name = key.lower().encode("latin-1")
        self._list[:] = [item for item in self._list if item[0] != name]

    def append(self, key: str, value: str) -> None:
        """Add a header line, keeping existing ones of the same name (e.g. set-cookie)."""
        self._list.append((key.lower().encode("latin-1"), value.encode("latin-1")))

    def setdefault(self, key: str, value: str) -> str:
        """Set `key` unless present; return its (first) value."""
        existing = self.get(key)
        if existing is not None:
            return existing
        self.append(key, value)
        return value

    def update(self, other: Mapping[str, str]) -> None:
        """Set every header of `other`, replacing values of the same names."""
        for key, value in other.items():
            self[key] = value

    def pop(self, key: str, default: str | None = None) -> str | None:
        """Remove every line of `key`; return its first value, or `default`."""
        value = self.get(key, default)
        del self[key]
        return value

    def add_vary_header(self, vary: str) -> None:
        """Append `vary` to the Vary header unless it is already listed."""
        existing = self.get("vary")
        if existing is None:
            self["vary"] = vary
            return
        present = {part.strip().lower() for part in existing.split(",")}
        if vary.lower() not in present:
            self["vary"] = f"{existing}, {vary}"

    def __ior__(self, other: Mapping[str, str]) -> MutableHeaders:
        self.update(other)
        return self


# ---------------------------------------------------------------------------
# Multi-dicts and query parameters
# ---------------------------------------------------------------------------


class ImmutableMultiDict(Mapping[str, _V]):
    """A read-only mapping that keeps every value of a repeated key, in order.

    `d[key]` and `d.get(key)` give the last value (as most frameworks do for query
    strings and forms); `getlist(key)` gives all of them.
    """

    __slots__ = ("_dict", "_list")

    _list: list[tuple[str, _V]]
    _dict: dict[str, _V]

    def __init__(self, items: Mapping[str, _V] | Iterable[tuple[str, _V]] | None = None) -> None:
        if items is None:
            pairs: list[tuple[str, _V]] = []
        elif isinstance(items, ImmutableMultiDict):
            pairs = list(items.multi_items())
        elif isinstance(items, Mapping):
            pairs = list(items.items())
        else:
            pairs = list(items)
        self._list = pairs
        self._dict = dict(pairs)

    def getlist(self, key: str) -> list[_V]:
        """Every value of `key`, in order."""
        return [v for k, v in self._list if k == key]

    def multi_items(self) -> list[tuple[str, _V]]:
        """Every `(key, value)` pair, in order."""
        return list(self._list)

    def __getitem__(self, key: str) -> _V:
        return self._dict[key]

    def __contains__(self, key: object) -> bool:
        return key in self._dict

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ImmutableMultiDict):
            return NotImplemented
        return sorted(self._list, key=repr) == sorted(other._list, key=repr)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._list!r})"


class MultiDict(ImmutableMultiDict[_V]):
    """A mutable `ImmutableMultiDict`."""

    __slots__ = ()

    def __setitem__(self, key: str, value: _V) -> None:
        self.setlist(key, [value])

    def __delitem__(self, key: str) -> None:
        self._list = [(k, v) for k, v in self._list if k != key]
        del self._dict[key]

    def setlist(self, key: str, values: list[_V]) -> None:
        """Replace every value of `key` with `values` (removing the key if empty)."""
        self._list = [(k, v) for k, v in self._list if k != key]
        if values:
            self._list.extend((key, v) for v in values)
            self._dict[key] = values[-1]
        else:
            self._dict.pop(key, None)

    def append(self, key: str, value: _V) -> None:
        """Add one more value for `key`."""
        self._list.append((key, value))
        self._dict[key] = value


class QueryParams(ImmutableMultiDict[str]):
    """Decoded query-string parameters; `str(params)` re-encodes them."""

    __slots__ = ()

    def __init__(
        self,
        query: str | bytes | Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    ) -> None:
        if isinstance(query, bytes):
            query = query.decode("latin-1")
        if isinstance(query, str):
            super().__init__(parse_qsl(query, keep_blank_values=True))
        else:
            super().__init__(query)

    def __str__(self) -> str:
        return urlencode(self._list)


# ---------------------------------------------------------------------------
# URL
# ---------------------------------------------------------------------------


class URL:
    """An immutable URL with parsed components (parsed on first access).

    Build it from a string or from an ASGI scope; `replace()` and the query helpers
    return new URLs. It compares equal to its string form.
    """

    __slots__ = ("_components", "_url")

    def __init__(self, url: str = "", scope: Mapping[str, Any] | None = None) -> None:
        if scope is not None:
            if url:
                raise TypeError("give either 'url' or 'scope', not both")
            url = _url_from_scope(scope)
        self._url = url
        self._components: SplitResult | None = None

    @property
    def components(self) -> SplitResult:
        if self._components is None:
            self._components = urlsplit(self._url)
        return self._components

    @property
    def scheme(self) -> str:
        return self.components.scheme

    @property
    def netloc(self) -> str:
        return self.components.netloc

    @property
    def path(self) -> str:
        return self.components.path

    @property
    def query(self) -> str:
        return self.components.query

    @property
    def fragment(self) -> str:
        return self.components.fragment

    @property
    def username(self) -> str | None:
        return self.components.username

    @property
    def password(self) -> str | None:
        return self.components.password

    @property
    def hostname(self) -> str | None:
        return self.components.hostname

    @property
    def port(self) -> int | None:
        return self.components.port

    @property
    def is_secure(self) -> bool:
        return self.scheme in ("https", "wss")

    def replace(self, **kwargs: Any) -> URL:
        """A new URL with components replaced (`path=`, `query=`, `hostname=`, `port=`...)."""
        if {"username", "password", "hostname", "port"} & kwargs.keys():
            hostname = kwargs.pop("hostname", None)
            port = kwargs.pop("port", self.port)
            username = kwargs.pop("username", self.username)
            password = kwargs.pop("password", self.password)
            if hostname is None:
                netloc = self.netloc
                _, _, hostname = netloc.rpartition("@")
                if hostname[-1] != "]":
                    hostname = hostname.rsplit(":", 1)[0]
            netloc = hostname
            if port is not None:
                netloc += f":{port}"
            if username is not None:
                userpass = username
                if password is not None:
                    userpass += f":{password}"
                netloc = f"{userpass}@{netloc}"
            kwargs["netloc"] = netloc
        return URL(self.components._replace(**kwargs).geturl())

    def include_query_params(self, **kwargs: Any) -> URL:
        """A new URL with these query parameters set (others kept)."""
        params = MultiDict(parse_qsl(self.query, keep_blank_values=True))
        for key, value in kwargs.items():
            params[key] = str(value)
        return self.replace(query=urlencode(params.multi_items()))

    def replace_query_params(self, **kwargs: Any) -> URL:
        """A new URL whose query string is exactly these parameters."""
        return self.replace(query=urlencode([(k, str(v)) for k, v in kwargs.items()]))

    def remove_query_params(self, keys: str | Sequence[str]) -> URL:
        """A new URL without these query parameters."""
        drop = {keys} if isinstance(keys, str) else set(keys)
        kept = [(k, v) for k, v in parse_qsl(self.query, keep_blank_values=True) if k not in drop]
        return self.replace(query=urlencode(kept))

    def __eq__(self, other: object) -> bool:
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(self._url)

    def __str__(self) -> str:
        return self._url

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._url!r})"


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _url_from_scope(scope: Mapping[str, Any]) -> str:
    scheme = scope.get("scheme", "http")
    raw_path = scope.get("raw_path")
    # raw_path keeps the client's percent-encoding; the decoded path is the fallback.
    path = raw_path.decode("latin-1") if raw_path else quote(scope["path"], safe="/:@!$&'()*+,;=-._~")
    query = scope.get("query_string", b"")
    host = None
    for key, value in scope["headers"]:
        if key == b"host":
            host = value.decode("latin-1")
            break
    if host is None:
        server = scope.get("server")
        if server is not None and server[1] is not None:
            host, port = server
            if port != _DEFAULT_PORTS.get(scheme):
                host = f"{host}:{port}"
        else:
            host = "localhost"
    url = f"{scheme}://{host}{path}"
    if query:
        url += "?" + query.decode("latin-1")
    return url


# ---------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------


class State:
    """Attribute access over a dict: `state.db` reads `state_dict["db"]`.

    The dict is shared, not copied: `request.state` writes into the request scope's
    `state`, which the server made as a shallow copy of the lifespan state.
    """

    __slots__ = ("_state",)

    _state: dict[str, Any]

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        object.__setattr__(self, "_state", {} if state is None else state)

    def __setattr__(self, key: str, value: Any) -> None:
        self._state[key] = value

    def __getattr__(self, key: str) -> Any:
        try:
            return self._state[key]
        except KeyError:
            raise AttributeError(f"'State' has no attribute {key!r}") from None

    def __delattr__(self, key: str) -> None:
        try:
            del self._state[key]
        except KeyError:
            raise AttributeError(f"'State' has no attribute {key!r}") from None

    def __contains__(self, key: str) -> bool:
        return key in self._state

    def __getitem__(self, key: str) -> Any:
        return self._state[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._state[key] = value

    def get(self, key: str, default: Any = None) -> Any:
        return self._state.get(key, default)

    def as_dict(self) -> dict[str, Any]:
        """The underlying dict (shared, not a copy)."""
        return self._state

    def __repr__(self) -> str:
        return f"State({self._state!r})"
