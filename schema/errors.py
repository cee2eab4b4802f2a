"""Domain errors as GraphQL sees them: data in mutation payloads, coded errors elsewhere."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from enum import Enum

import strawberry
from graphql import GraphQLError

from resolvers.core.errors import CursorExpired, DomainError

__all__ = ["CodedError", "ErrorCode", "UserError", "coded", "raise_as_graphql", "user_errors"]


@strawberry.enum
class ErrorCode(Enum):
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    INVALID = "INVALID"
    CURSOR_EXPIRED = "CURSOR_EXPIRED"
    FORBIDDEN = "FORBIDDEN"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    BACKEND_UNAVAILABLE = "BACKEND_UNAVAILABLE"
    INTERNAL = "INTERNAL"


@strawberry.type(description="Why a mutation did not do what was asked.")
class UserError:
    code: ErrorCode
    field: str | None = strawberry.field(description="The input field at fault, if one is.")
    message: str


def user_errors(exc: DomainError) -> list[UserError]:
    return [UserError(code=ErrorCode(exc.code), field=exc.field, message=exc.message)]


class CodedError(GraphQLError):
    """A domain error outside a payload (queries): top-level `errors` with a code."""


def coded(exc: DomainError) -> CodedError:
    extensions: dict[str, object] = {"code": exc.code}
    if exc.field is not None:
        extensions["field"] = exc.field
    if isinstance(exc, CursorExpired):
        extensions["oldestCursor"] = str(exc.oldest_cursor)
    return CodedError(exc.message, extensions=extensions)


@contextlib.contextmanager
def raise_as_graphql() -> Iterator[None]:
    try:
        yield
    except DomainError as exc:
        raise coded(exc) from exc
