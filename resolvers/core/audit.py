"""Audit entries: written in the same transaction as the change they describe, and read
for both doors: GraphQL's `auditLog` and REST's oplog (LAIN's `/v1/oplogs/<app>/`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from resolvers.core import access
from resolvers.core.context import OpContext, Principal
from resolvers.core.errors import InvalidInput
from resolvers.core.pages import check_first, decode_cursor, page_of
from resolvers.readmodel.views import Page
from store import queries
from store.models import AuditEntry

__all__ = ["OPLOG_LENGTH", "AuditView", "audit_view", "list_audit", "recent_operations", "record"]

OPLOG_LENGTH = 50  # LAIN showed the last 50 operations
# LAIN's maintainers were SSO group members: changing them never reached its oplog.
_NOT_IN_OPLOG = ("ADD_MAINTAINER", "REMOVE_MAINTAINER")


def record(
    session: AsyncSession,
    principal: Principal,
    operation: str,
    app: str,
    *,
    meta_version: str | None = None,
    message: str = "",
) -> None:
    """Add an entry to `session`; it commits (or rolls back) with the change itself."""
    session.add(
        AuditEntry(
            username=principal.name,
            operation=operation,
            app=app,
            meta_version=meta_version or "",
            message=message,
        )
    )


@dataclass(frozen=True, slots=True)
class AuditView:
    id: int
    at: datetime
    username: str
    operation: str
    app: str
    meta_version: str
    message: str


def audit_view(row: AuditEntry) -> AuditView:
    return AuditView(
        id=row.id,
        at=row.at,
        username=row.username,
        operation=row.operation,
        app=row.app,
        meta_version=row.meta_version,
        message=row.message,
    )


async def list_audit(
    ctx: OpContext, *, app: str, first: int | None = None, after: str | None = None
) -> Page[AuditView]:
    """An app's audit entries, newest first. Raises: Unauthenticated, NotFound, Forbidden,
    InvalidInput."""
    limit = check_first(first)
    before = decode_cursor("audit", after)
    if before is not None and not before.isdigit():
        raise InvalidInput("after: not a cursor of this list", field="after")
    await access.check_app(ctx, app)
    views = await _entries(ctx, app, before_id=int(before) if before else None, limit=limit + 1)
    return page_of(views, limit, "audit", lambda v: str(v.id), has_previous=before is not None)


async def recent_operations(
    ctx: OpContext, *, app: str, limit: int = OPLOG_LENGTH
) -> list[AuditView]:
    """The app's newest audit entries first, without the maintainer changes LAIN never
    logged; entries outlive the app, so any name may be asked.

    With auth off it is open to everyone, as LAIN's oplog was, and an unknown name has no
    entries. With auth on it needs read access to the app (a deliberate deviation: the log
    names who operated the app and every version it ran, which is not for strangers).

    Raises (auth on): Unauthenticated, NotFound, Forbidden.
    """
    if ctx.services.auth_enabled:
        await access.check_app(ctx, app)
    return await _entries(ctx, app, before_id=None, limit=limit, excluding=_NOT_IN_OPLOG)


async def _entries(
    ctx: OpContext,
    app: str,
    *,
    before_id: int | None,
    limit: int,
    excluding: tuple[str, ...] = (),
) -> list[AuditView]:
    async with ctx.sessions() as session:
        rows = await queries.audit_page(
            session, app, before_id=before_id, limit=limit, excluding=excluding
        )
    return [audit_view(row) for row in rows]
