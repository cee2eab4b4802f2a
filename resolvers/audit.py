"""Audit entries: written in the same transaction as the change they describe."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from resolvers import access
from resolvers.context import OpContext, Principal
from resolvers.errors import InvalidInput
from resolvers.pages import check_first, decode_cursor, page_of
from resolvers.views import Page
from store import queries
from store.models import AuditEntry

__all__ = ["AuditView", "audit_view", "list_audit", "record"]


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
    async with ctx.sessions() as session:
        rows = await queries.audit_page(
            session, app, before_id=int(before) if before else None, limit=limit + 1
        )
    views = [audit_view(row) for row in rows]
    return page_of(views, limit, "audit", lambda v: str(v.id), has_previous=before is not None)
