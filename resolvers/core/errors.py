"""The domain errors every resolver raises; the front doors map them, each in one place.

DomainError
 ├── NotFound              no such repo, app, release, proc or instance
 ├── Conflict              already exists, or clashes with an operation in progress
 ├── Forbidden             the principal may not do this
 ├── Unauthenticated       no valid credentials where they are required
 ├── InvalidInput(field)   the input breaks a rule; `field` names the input field
 │    └── CursorExpired    an event cursor older than what the event log still keeps
 └── BackendUnavailable    the scheduler cannot take the request now
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "BackendUnavailable",
    "Conflict",
    "CursorExpired",
    "DomainError",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "Unauthenticated",
]


class DomainError(Exception):
    """An expected failure with a stable `code` (the GraphQL error code as is)."""

    code: ClassVar[str] = "INTERNAL"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, field={self.field!r})"


class NotFound(DomainError):
    code = "NOT_FOUND"


class Conflict(DomainError):
    code = "CONFLICT"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class InvalidInput(DomainError):
    code = "INVALID"


class CursorExpired(InvalidInput):
    """The events after this cursor were pruned; `oldest_cursor` is where a client can
    resume from (after it re-reads the state it missed)."""

    code = "CURSOR_EXPIRED"

    def __init__(self, cursor: int, oldest_cursor: int) -> None:
        super().__init__(
            f"after: cursor {cursor} has expired: the events after it are no longer kept; "
            f"the oldest cursor to resume after is {oldest_cursor}",
            field="after",
        )
        self.oldest_cursor = oldest_cursor


class BackendUnavailable(DomainError):
    code = "BACKEND_UNAVAILABLE"
