"""Type checks for loaded YAML values that report to a ProblemSink instead of raising.

Each returns the checked value, or None after recording a problem at `path`; callers then fall
back to the default so that the rest of the document is still checked. List checks report each
bad item and keep the good ones. Booleans are never accepted as integers, although Python (and
so the old parser) treats them as such.
"""

from __future__ import annotations

from typing import Any

from lainyaml.errors import ProblemSink

__all__ = [
    "boolean",
    "describe",
    "integer",
    "mapping",
    "show",
    "string",
    "string_items",
    "string_list",
]

_SHOW_LIMIT = 60


def describe(value: object) -> str:
    """A short name of a YAML value's type for messages: "a string", "a list", "null"..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def show(value: object) -> str:
    """A value as a message may quote it: repr for scalars, shortened; the type otherwise."""
    if isinstance(value, bool | int | float | str):
        text = repr(value)
        return text if len(text) <= _SHOW_LIMIT else text[: _SHOW_LIMIT - 3] + "..."
    return describe(value)


def string(value: object, path: str, sink: ProblemSink, *, non_empty: bool = False) -> str | None:
    if not isinstance(value, str):
        sink.add(path, f"must be a string, not {describe(value)}")
        return None
    if non_empty and not value.strip():
        sink.add(path, "must not be empty")
        return None
    return value


def boolean(value: object, path: str, sink: ProblemSink) -> bool | None:
    if not isinstance(value, bool):
        sink.add(path, f"must be true or false, not {describe(value)}")
        return None
    return value


def integer(
    value: object,
    path: str,
    sink: ProblemSink,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    rule: str = "an integer",
) -> int | None:
    """An int within [minimum, maximum]; `rule` words the requirement for the message."""
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and (minimum is None or value >= minimum)
        and (maximum is None or value <= maximum)
    ):
        return value
    sink.add(path, f"must be {rule}, not {show(value)}")
    return None


def mapping(value: object, path: str, sink: ProblemSink) -> dict[str, Any] | None:
    """A mapping whose keys are all strings."""
    if not isinstance(value, dict):
        sink.add(path, f"must be a mapping, not {describe(value)}")
        return None
    bad = [key for key in value if not isinstance(key, str)]
    if bad:
        sink.add(path, f"keys must be strings, not {describe(bad[0])} ({bad[0]!r})")
        return None
    return value


def string_items(
    value: object, path: str, sink: ProblemSink, *, non_empty: bool = False
) -> list[tuple[str, str]] | None:
    """`(path[index], text)` for each string of a list; bad items are reported and left out.

    None only when `value` is not a list at all, so callers can still check the good items.
    """
    if not isinstance(value, list):
        sink.add(path, f"must be a list of strings, not {describe(value)}")
        return None
    items: list[tuple[str, str]] = []
    for i, item in enumerate(value):
        where = f"{path}[{i}]"
        text = string(item, where, sink, non_empty=non_empty)
        if text is not None:
            items.append((where, text))
    return items


def string_list(
    value: object, path: str, sink: ProblemSink, *, non_empty: bool = False
) -> tuple[str, ...] | None:
    """The good strings of a list (see `string_items`), or None when it is not a list."""
    items = string_items(value, path, sink, non_empty=non_empty)
    return None if items is None else tuple(text for _where, text in items)
