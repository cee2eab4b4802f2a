"""The durable event log's SQL: append in batches, read after a cursor, prune.

Ids are the cursors, so they must become visible in id order or a reader that has read
up to id 12 could miss an 11 committed a moment later by another console. On PostgreSQL
every append therefore takes one transaction-scoped advisory lock: appends are serialized
(one short transaction per batch, not per event), and a transaction's ids are visible before
the next one draws its own. SQLite has a single writer anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import EventRecord, utcnow

__all__ = [
    "NOTIFY_CHANNEL",
    "EventBounds",
    "NewEvent",
    "append_events",
    "event_bounds",
    "events_after",
    "prune_events",
]

NOTIFY_CHANNEL = "lain_console_events"
# pg_advisory_xact_lock key of event appends: "lainEvt" in ASCII, clear of app lock keys.
_APPEND_LOCK = 0x6C61696E457674


@dataclass(frozen=True, slots=True)
class NewEvent:
    kind: str
    app: str
    proc: str | None
    payload: dict[str, object]
    at: datetime


@dataclass(frozen=True, slots=True)
class EventBounds:
    oldest: int | None  # None: the log is empty
    newest: int | None


def _is_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def append_events(session: AsyncSession, events: Sequence[NewEvent]) -> list[int]:
    """Insert `events` in order in the session's transaction; returns their ids.

    On PostgreSQL the other consoles are told with NOTIFY, delivered when this commits.
    """
    if not events:
        return []
    postgresql = _is_postgresql(session)
    if postgresql:
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _APPEND_LOCK})
    rows = [
        {"kind": e.kind, "app": e.app, "proc": e.proc, "payload": e.payload, "at": e.at}
        for e in events
    ]
    # One multi-row INSERT … RETURNING: both databases give the ids back in row order.
    result = await session.execute(
        insert(EventRecord)
        .values(rows)
        .returning(EventRecord.id)
        .execution_options(sort_by_parameter_order=True)
    )
    ids = [row[0] for row in result]
    if postgresql:
        await session.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": NOTIFY_CHANNEL, "payload": str(ids[-1])},
        )
    return ids


async def events_after(
    session: AsyncSession,
    after: int,
    *,
    upto: int | None = None,
    app: str | None = None,
    proc: str | None = None,
    limit: int = 500,
) -> list[EventRecord]:
    """Events with `after` < id (≤ `upto`), of `app` (and `proc`) when given, oldest first."""
    query = select(EventRecord).where(EventRecord.id > after)
    if upto is not None:
        query = query.where(EventRecord.id <= upto)
    if app is not None:
        query = query.where(EventRecord.app == app)
    if proc is not None:
        query = query.where(EventRecord.proc == proc)
    return list((await session.execute(query.order_by(EventRecord.id).limit(limit))).scalars())


async def event_bounds(session: AsyncSession) -> EventBounds:
    row = (await session.execute(select(func.min(EventRecord.id), func.max(EventRecord.id)))).one()
    return EventBounds(oldest=row[0], newest=row[1])


async def prune_events(
    session: AsyncSession, *, keep: int, max_age_seconds: int, now: datetime | None = None
) -> int:
    """Delete events beyond the newest `keep` or older than `max_age_seconds`; returns how many.

    The newest event always stays: it is what tells a cursor from the future from one that
    merely has nothing after it.
    """
    newest = (await session.execute(select(func.max(EventRecord.id)))).scalar()
    if newest is None:
        return 0
    cutoff = (now or utcnow()).timestamp() - max_age_seconds
    too_old = select(func.max(EventRecord.id)).where(
        EventRecord.at < datetime.fromtimestamp(cutoff, tz=utcnow().tzinfo)
    )
    oldest_too_old = (await session.execute(too_old)).scalar() or 0
    horizon = min(max(newest - keep, oldest_too_old), newest - 1)
    if horizon <= 0:
        return 0
    result = await session.execute(delete(EventRecord).where(EventRecord.id <= horizon))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]  # a CursorResult for DELETE
