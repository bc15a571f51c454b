"""Decode the recorder app's JSON form of ASGI values back into Python values."""

from __future__ import annotations

from typing import Any


def decode(obj: Any) -> Any:
    """Inverse of tests.apps.recorder.encode (tuples come back as lists)."""
    if isinstance(obj, dict):
        if set(obj) == {"$bytes"}:
            return obj["$bytes"].encode("latin-1")
        return {key: decode(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [decode(item) for item in obj]
    return obj
