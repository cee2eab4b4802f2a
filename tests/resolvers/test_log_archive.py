"""The console's archive of ended allocations' output, in its database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backends.logs import ArchivedLog, LogLine, LogStream
from resolvers.core.log_archive import DatabaseLogArchive

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def _entry(origin: str, instance: int, text: str, ended_at: datetime) -> ArchivedLog:
    line = LogLine("hello.web.web", instance, LogStream.STDOUT, None, text, 7, origin)
    return ArchivedLog(
        job_id="hello.web.web",
        instance=instance,
        origin=origin,
        stream=LogStream.STDOUT,
        data=ArchivedLog.encode([line]),
        ended_at=ended_at,
    )


async def test_archive_replaces_by_origin_and_forgets_what_is_past_retention(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    archive = DatabaseLogArchive(sessions, retention=timedelta(days=7))
    await archive.save(_entry("alloc-a", 1, "first", T0))
    await archive.save(_entry("alloc-a", 1, "again", T0 + timedelta(hours=1)))
    await archive.save(_entry("alloc-b", 2, "other", T0 + timedelta(hours=2)))

    found = await archive.load("hello.web.web")
    assert [(e.origin, [line.text for line in e.lines()]) for e in found] == [
        ("alloc-a", ["again"]),
        ("alloc-b", ["other"]),
    ]
    assert [e.origin for e in await archive.load("hello.web.web", 2)] == ["alloc-b"]
    assert found[0].lines()[0].seq == 7  # positions survive the archive

    # A week and 90 minutes on, saving anything drops what ended before the retention.
    await archive.save(_entry("alloc-c", 1, "late", T0 + timedelta(days=7, minutes=90)))
    assert [e.origin for e in await archive.load("hello.web.web")] == ["alloc-b", "alloc-c"]
