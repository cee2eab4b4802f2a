"""Request bodies as JSON, with each key of an object at most once.

`json.loads` keeps the last of two equal keys, so a proxy or a log that reads the first sees
another request than the console acts on; both doors refuse such a body instead, naming
the key.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["DuplicateKey", "loads"]


class DuplicateKey(ValueError):
    """An object in the body has the same key twice."""

    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {json.dumps(key)} in the JSON body")
        self.key = key


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise DuplicateKey(key)
        found[key] = value
    return found


def loads(data: str | bytes) -> Any:
    """Like `json.loads`; raises DuplicateKey (a ValueError) for a repeated key."""
    return json.loads(data, object_pairs_hook=_unique)
