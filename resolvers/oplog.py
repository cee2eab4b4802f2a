"""The operation log of an app, as LAIN's `/v1/oplogs/<app>/` reads it from the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from resolvers.context import OpContext
from store import queries

__all__ = ["OPLOG_LENGTH", "OplogEntry", "recent_operations"]

OPLOG_LENGTH = 50  # LAIN showed the last 50 operations


@dataclass(frozen=True, slots=True)
class OplogEntry:
    id: int
    app: str
    user: str
    at: datetime
    operation: str
    meta_version: str
    message: str


async def recent_operations(
    ctx: OpContext, *, app: str, limit: int = OPLOG_LENGTH
) -> list[OplogEntry]:
    """The app's newest audit entries first; entries outlive the app, so any name may be asked.

    Open to everyone, as LAIN's oplog was; an unknown name has no entries.
    """
    async with ctx.sessions() as session:
        rows = await queries.audit_page(session, app, before_id=None, limit=limit)
    return [
        OplogEntry(
            id=row.id,
            app=row.app,
            user=row.username,
            at=row.at,
            operation=row.operation,
            meta_version=row.meta_version,
            message=row.message,
        )
        for row in rows
    ]
