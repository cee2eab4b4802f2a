"""Idempotency keys: a retried mutation gets the first answer, not a second deploy.

Both front doors pass the client's key (REST `Idempotency-Key`, GraphQL `idempotencyKey`)
here with the operation and its arguments. The first request claims the key, runs, and
stores its outcome: what the caller's `encode` makes of the result (REST keeps its whole
reply; GraphQL the identity of the object, read again on replay), or the error it raised. A
retry with the same key and arguments is answered from that outcome without running the
operation again; the same key with other arguments is a conflict, and so is a retry while
the first request still runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from resolvers.core.context import OpContext
from resolvers.core.errors import (
    BackendUnavailable,
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from store.models import IdempotencyRecord, utcnow

__all__ = ["KEY_LIFETIME", "MAX_KEY_LENGTH", "run_once"]

T = TypeVar("T")
KEY_LIFETIME = timedelta(hours=24)
MAX_KEY_LENGTH = 200
_ERRORS: dict[str, type[DomainError]] = {
    cls.code: cls
    for cls in (NotFound, Conflict, Forbidden, Unauthenticated, InvalidInput, BackendUnavailable)
}


def _fingerprint(operation: str, arguments: Mapping[str, object]) -> str:
    canonical = json.dumps([operation, arguments], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            f"an idempotency key is 1 to {MAX_KEY_LENGTH} printable characters",
            field="idempotencyKey",
        )


async def run_once(
    ctx: OpContext,
    key: str | None,
    operation: str,
    arguments: Mapping[str, object],
    call: Callable[[], Awaitable[T]],
    *,
    encode: Callable[[T], object],
    decode: Callable[[object], Awaitable[T]],
) -> T:
    """`call()`, unless this key already ran it; then that run's outcome.

    Raises: whatever `call` raises (and its replays), Conflict for a reused or busy key,
    InvalidInput for a malformed key.
    """
    if key is None:
        return await call()
    _check_key(key)
    fingerprint = _fingerprint(operation, arguments)
    principal = ctx.principal.name
    claimed = await _claim(ctx, principal, key, operation, fingerprint)
    if claimed is not None:
        return await _replay(claimed, operation, fingerprint, decode)
    try:
        result = await call()
    except DomainError as exc:
        await _store(ctx, principal, key, {"error": [exc.code, exc.field, exc.message]})
        raise
    except BaseException:
        await _release(ctx, principal, key)  # unexpected: let the client retry for real
        raise
    await _store(ctx, principal, key, {"ok": encode(result)})
    return result


async def _claim(
    ctx: OpContext, principal: str, key: str, operation: str, fingerprint: str
) -> IdempotencyRecord | None:
    """None when this request now owns the key, else the record that already holds it."""
    async with ctx.sessions.begin() as session:
        await session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.created_at < utcnow() - KEY_LIFETIME)
        )
    try:
        async with ctx.sessions.begin() as session:
            session.add(
                IdempotencyRecord(
                    principal=principal, key=key, operation=operation, fingerprint=fingerprint
                )
            )
        return None
    except IntegrityError:
        async with ctx.sessions() as session:
            query = select(IdempotencyRecord).where(
                IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
            )
            record = (await session.execute(query)).scalar_one_or_none()
        if record is None:  # expired between the two statements: treat as in flight
            raise Conflict(
                "that idempotency key is in use; retry", field="idempotencyKey"
            ) from None
        return record


async def _replay(
    record: IdempotencyRecord,
    operation: str,
    fingerprint: str,
    decode: Callable[[object], Awaitable[T]],
) -> T:
    if record.operation != operation or record.fingerprint != fingerprint:
        raise Conflict(
            "this idempotency key was used for a different request", field="idempotencyKey"
        )
    outcome = record.outcome
    if outcome is None:
        raise Conflict(
            "the request with this idempotency key is still running", field="idempotencyKey"
        )
    match outcome.get("error"):
        case None:
            pass
        case [code, field, message]:  # as _run_and_record stores it
            raise _ERRORS.get(str(code), DomainError)(
                str(message), field=None if field is None else str(field)
            )
        case stored:
            raise TypeError(f"unreadable stored error {stored!r}")
    return await decode(outcome["ok"])


async def _store(ctx: OpContext, principal: str, key: str, outcome: dict[str, object]) -> None:
    async with ctx.sessions.begin() as session:
        query = select(IdempotencyRecord).where(
            IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
        )
        record = (await session.execute(query)).scalar_one()
        record.outcome = outcome


async def _release(ctx: OpContext, principal: str, key: str) -> None:
    async with ctx.sessions.begin() as session:
        await session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
            )
        )
