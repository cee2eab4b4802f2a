"""Cursor pagination: at most 100 items a page, cursors opaque to clients."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import TypeVar

from resolvers.core.errors import InvalidInput
from resolvers.readmodel.views import Page

__all__ = ["MAX_PAGE", "decode_cursor", "encode_cursor", "page_of"]

MAX_PAGE = 100
T = TypeVar("T")


def encode_cursor(kind: str, key: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{key}".encode()).decode()


def decode_cursor(kind: str, cursor: str | None) -> str | None:
    """The key inside a cursor made by `encode_cursor(kind, ...)`, or None for no cursor.

    Raises:
        InvalidInput: the cursor was not made by us for this kind of list.
    """
    if cursor is None:
        return None
    try:
        decoded = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeError, ValueError):
        decoded = ""
    prefix = f"{kind}:"
    if not decoded.startswith(prefix):
        raise InvalidInput(f"after: {cursor!r} is not a cursor of this list", field="after")
    return decoded[len(prefix) :]


def check_first(first: int | None) -> int:
    """The page size: `first` when given (1..100), else 100.

    Raises:
        InvalidInput: `first` is out of range.
    """
    if first is None:
        return MAX_PAGE
    if not 0 <= first <= MAX_PAGE:
        raise InvalidInput(f"first must be between 0 and {MAX_PAGE}, got {first}", field="first")
    return first


def page_of(
    rows: Sequence[T], first: int, kind: str, key: Callable[[T], str], *, has_previous: bool
) -> Page[T]:
    """A page from `rows`, fetched with one row more than `first` to learn if more follow."""
    items = tuple(rows[:first])
    cursors = tuple(encode_cursor(kind, key(item)) for item in items)
    return Page(
        items=items,
        has_next=len(rows) > first,
        has_previous=has_previous,
        start_cursor=cursors[0] if cursors else None,
        end_cursor=cursors[-1] if cursors else None,
        cursors=cursors,
    )
