"""The console's archive of instance output that its scheduler forgets (Nomad's GC).

An adapter between `backends.logs.LogArchive` and the store; the server hands it to the
scheduler it makes (backends may not import the store).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backends.logs import ArchivedLog, LogStream
from store.models import LogArchiveEntry

__all__ = ["DatabaseLogArchive"]


class DatabaseLogArchive:
    """A `backends.logs.LogArchive` in the console's database.

    Entries older than `retention` are deleted as new ones come in, so the table holds
    what ended within the retention period (at most one entry per origin and stream).
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, retention: timedelta) -> None:
        self._sessions = sessions
        self._retention = retention

    async def save(self, entry: ArchivedLog) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                delete(LogArchiveEntry).where(
                    (
                        (LogArchiveEntry.origin == entry.origin)
                        & (LogArchiveEntry.stream == str(entry.stream))
                    )
                    | (LogArchiveEntry.ended_at < entry.ended_at - self._retention)
                )
            )
            session.add(
                LogArchiveEntry(
                    job_id=entry.job_id,
                    instance=entry.instance,
                    origin=entry.origin,
                    stream=str(entry.stream),
                    data=entry.data,
                    ended_at=entry.ended_at,
                )
            )

    async def load(self, job_id: str, instance: int | None = None) -> list[ArchivedLog]:
        query = select(LogArchiveEntry).where(LogArchiveEntry.job_id == job_id)
        if instance is not None:
            query = query.where(LogArchiveEntry.instance == instance)
        query = query.order_by(LogArchiveEntry.ended_at, LogArchiveEntry.id)
        async with self._sessions() as session:
            rows = (await session.execute(query)).scalars().all()
        return [
            ArchivedLog(
                job_id=row.job_id,
                instance=row.instance,
                origin=row.origin,
                stream=LogStream(row.stream),
                data=row.data,
                ended_at=row.ended_at,
            )
            for row in rows
        ]
