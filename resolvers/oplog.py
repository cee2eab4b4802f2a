"""The operation log of an app, as LAIN's `/v1/oplogs/<app>/` reads it from the audit log."""

from __future__ import annotations

from resolvers import access
from resolvers.audit import AuditView, audit_view
from resolvers.context import OpContext
from store import queries

__all__ = ["OPLOG_LENGTH", "recent_operations"]

OPLOG_LENGTH = 50  # LAIN showed the last 50 operations
# LAIN's maintainers were SSO group members: changing them never reached its oplog.
_NOT_IN_OPLOG = ("ADD_MAINTAINER", "REMOVE_MAINTAINER")


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
    async with ctx.sessions() as session:
        rows = await queries.audit_page(
            session, app, before_id=None, limit=limit, excluding=_NOT_IN_OPLOG
        )
    return [audit_view(row) for row in rows]
