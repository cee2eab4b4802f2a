"""The bytes Python 2 produced: dict iteration order, `json.dumps` and `"%s" % value`.

The console serialised dicts with Python 2.7's `json.dumps`, which walks a dict in its hash
table's slot order. That order is deterministic (string hashes were not randomised), so it is
reproduced here by replaying the inserts into an emulated 2.7 dict. The four
envelope orders COMPAT 1.2 observed, and its repo, detail and oplog examples, come out of it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

__all__ = ["Ordered", "Shape", "dict_order", "dumps", "py2_str"]

_MASK64 = (1 << 64) - 1
_PERTURB_SHIFT = 5
_MIN_SIZE = 8


def _hash(key: str) -> int:
    """CPython 2.7's string hash on a 64-bit build, without hash randomisation."""
    if not key:
        return 0
    x = (ord(key[0]) << 7) & _MASK64
    for char in key:
        x = ((1000003 * x) & _MASK64) ^ ord(char)
    x ^= len(key)
    if x == _MASK64:  # -1 is reserved for errors in C
        x = _MASK64 - 1
    return x


class _Dict27:
    """The slot table of a CPython 2.7 dict with string keys (lookdict_string, dictresize)
    that is only ever inserted into."""

    def __init__(self) -> None:
        self._slots: list[str | None] = [None] * _MIN_SIZE
        self._used = 0

    def _probe(self, key: str) -> int:
        mask = len(self._slots) - 1
        h = _hash(key)
        i = h & mask
        perturb = h
        while True:
            slot = self._slots[i & mask]
            if slot is None or slot == key:
                return i & mask
            i = ((i << 2) + i + perturb + 1) & _MASK64
            perturb >>= _PERTURB_SHIFT

    def insert(self, key: str) -> None:
        index = self._probe(key)
        if self._slots[index] == key:
            return
        self._slots[index] = key
        self._used += 1
        # Without deletions the fill is the used count; 2.7 grows at two thirds full.
        if self._used * 3 >= len(self._slots) * 2:
            size = _MIN_SIZE
            while size <= 4 * self._used:
                size <<= 1
            old = self.keys()  # re-inserted in the old table's slot order
            self._slots = [None] * size
            for item in old:
                self._slots[self._probe(item)] = item

    def keys(self) -> list[str]:
        return [slot for slot in self._slots if slot is not None]


def dict_order(inserted: Iterable[str]) -> list[str]:
    """The iteration order of a 2.7 dict built by inserting `inserted` in that order."""
    return list(_dict_order(tuple(inserted)))


@lru_cache(maxsize=1024)
def _dict_order(inserted: tuple[str, ...]) -> tuple[str, ...]:
    # A response has a handful of key sequences (envelope, app, proc, pod...) repeated
    # thousands of times; the emulated hash table is worth building once for each.
    table = _Dict27()
    for key in inserted:
        table.insert(key)
    return tuple(table.keys())


class Ordered(dict[str, Any]):
    """A dict built in 2.7's iteration order, with every dict inside it built so too (or
    empty): `dumps` writes it as it is, without walking it."""

    __slots__ = ()


class Shape:
    """One kind of object: the keys in the order the console inserted them, and `keys`,
    the order 2.7 iterated them in (computed once): the order to write an `Ordered` in."""

    __slots__ = ("inserted", "keys")

    def __init__(self, *inserted: str) -> None:
        self.inserted = inserted
        self.keys = _dict_order(inserted)


def _reorder(value: Any) -> Any:
    if type(value) is Ordered:
        return value
    if isinstance(value, dict):
        return {key: _reorder(value[key]) for key in _dict_order(tuple(value))}
    if isinstance(value, list | tuple):
        return [_reorder(item) for item in value]
    return value


def dumps(value: Any) -> bytes:
    """`json.dumps(value)` as Python 2.7 wrote it: one line, `", "` and `": "` separators,
    non-ASCII escaped, and every dict (built in the console's insertion order) in 2.7 order."""
    return json.dumps(_reorder(value), ensure_ascii=True).encode("ascii")


def py2_str(value: Any) -> str:
    """`"%s" % value` in Python 2 for a value decoded from JSON (strings were unicode)."""
    if isinstance(value, str):
        return value
    return _py2_repr(value)


def _py2_repr(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _py2_float(value)
    if isinstance(value, str):
        return "u" + ascii(value)
    if isinstance(value, list):
        return "[" + ", ".join(_py2_repr(item) for item in value) + "]"
    if isinstance(value, dict):
        items = (f"{_py2_repr(key)}: {_py2_repr(value[key])}" for key in dict_order(value))
        return "{" + ", ".join(items) + "}"
    return repr(value)


def _py2_float(value: float) -> str:
    # Python 2's str(float) kept 12 significant digits and always showed a decimal point.
    if value != value:
        return "nan"
    if value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    text = format(value, ".12g")
    if not any(c in text for c in ".e"):
        text += ".0"
    return text
