"""Frozen view dataclasses to JSON and back, for events stored in the database.

An event is written once and read by every replica, possibly after a restart and by
a newer release of the console, so the format is plain JSON driven by the dataclasses'
type hints: dataclasses become objects, enums their values, datetimes ISO 8601 strings,
tuples lists. Fields missing from an old payload take their defaults.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from functools import cache
from types import MappingProxyType
from typing import Any, TypeVar

__all__ = ["decode", "encode"]

T = TypeVar("T")


def encode(value: object) -> Any:
    """`value` (a dataclass, enum, datetime, tuple, mapping or plain JSON value) as JSON data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in _fields(type(value))}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [encode(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): encode(item) for key, item in value.items()}
    return value


def decode(kind: type[T], data: Any) -> T:
    """Rebuild a `kind` (a dataclass) from what `encode` made of one."""
    result: T = _decode(kind, data)
    return result


def _decode(hint: Any, data: Any) -> Any:
    if data is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _decode(options[0], data) if len(options) == 1 else data
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], item) for item in data)
        return tuple(_decode(arg, item) for arg, item in zip(args, data, strict=True))
    if origin is dict:
        _, value_hint = typing.get_args(hint)
        return {key: _decode(value_hint, item) for key, item in data.items()}
    if origin is Mapping:  # the read-only mappings of frozen values
        _, value_hint = typing.get_args(hint)
        return MappingProxyType({key: _decode(value_hint, item) for key, item in data.items()})
    if isinstance(hint, type):
        if dataclasses.is_dataclass(hint):
            hints = _hints(hint)
            return hint(
                **{
                    f.name: _decode(hints[f.name], data[f.name])
                    for f in _fields(hint)
                    if f.name in data
                }
            )
        if issubclass(hint, Enum):
            return hint(data)
        if issubclass(hint, datetime):
            return datetime.fromisoformat(data)
    return data


@cache
def _fields(kind: type) -> tuple[dataclasses.Field[Any], ...]:
    return tuple(f for f in dataclasses.fields(kind) if f.init)


@cache
def _hints(kind: type) -> dict[str, Any]:
    return typing.get_type_hints(kind)
