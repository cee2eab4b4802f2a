"""A user's role on an app as LAIN's `roles/<user>/` answered it: to anyone, without a token."""

from __future__ import annotations

from resolvers import access
from resolvers.context import OpContext
from store import queries
from store.models import MaintainerRole

__all__ = ["user_role"]


async def user_role(ctx: OpContext, *, app: str, username: str) -> MaintainerRole | None:
    """The role `username` has on `app`, or None when none (or no such app).

    With auth off there are no maintainers and everyone may do everything on a registered
    app, so everyone is its admin, as `roles/` says of the caller.
    """
    async with ctx.sessions() as session:
        row = await queries.app_by_name(session, app)
        if row is None:
            return None
        if not ctx.services.auth_enabled:
            return MaintainerRole.ADMIN
        return await access.role_on(session, row, username)
