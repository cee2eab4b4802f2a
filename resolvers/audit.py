"""Audit entries: written in the same transaction as the change they describe."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from resolvers.context import Principal
from store.models import AuditEntry

__all__ = ["record"]


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
