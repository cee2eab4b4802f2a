"""The stored state version: one number bumped in every transaction that writes.

Every session the console makes (`store.engine.make_sessionmaker`) is a `VersionedSession`:
a transaction that executed anything but a SELECT, or flushed ORM changes, bumps the
`state_version` row as its last statement before COMMIT. The bump and the write become
visible together, to every console on the database, so a reader that reads the number
before its data can never pair an old answer with a new number. No list of "writes that
matter" is kept: a write the read caches do not need only costs them a miss.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session

from store.models import StateVersion

__all__ = ["VersionedSession", "read_state_version"]

_WROTE = "state_version.wrote"  # key in Session.info: this transaction has written
_ROW = 1
_BUMP = (
    update(StateVersion)
    .where(StateVersion.id == _ROW)
    .values(version=StateVersion.version + 1)
    .execution_options(synchronize_session=False)  # no objects of it are ever loaded
)
_READ = select(StateVersion.version).where(StateVersion.id == _ROW)


class VersionedSession(Session):
    """A Session whose committed writes bump the state version (see the module)."""


@event.listens_for(VersionedSession, "do_orm_execute")
def _note_statement(state: ORMExecuteState) -> None:
    # Anything but a SELECT counts: INSERT/UPDATE/DELETE, and text() statements, which
    # cannot be told apart (only the event log's lock and NOTIFY use them, in writes).
    if not state.is_select:
        state.session.info[_WROTE] = True


@event.listens_for(VersionedSession, "after_flush")
def _note_flush(session: Session, _context: Any) -> None:
    session.info[_WROTE] = True


@event.listens_for(VersionedSession, "before_commit")
def _bump(session: Session) -> None:
    # Flush first, so that the version row is the last lock the transaction takes: two
    # writers then never wait on each other in opposite orders (PostgreSQL).
    session.flush()
    if session.info.pop(_WROTE, False):
        session.execute(_BUMP)
        session.info.pop(_WROTE, None)  # the bump itself is not a write still to count


@event.listens_for(VersionedSession, "after_soft_rollback")
def _forget(session: Session, _previous: Any) -> None:
    session.info.pop(_WROTE, None)


async def read_state_version(session: AsyncSession) -> int | None:
    """The stored version; None when the row is missing (nothing may be cached then)."""
    value = (await session.execute(_READ)).scalar_one_or_none()
    return None if value is None else int(value)
