"""A user's role on an app as LAIN's `roles/<user>/` answered it: to anyone, without a token,
with auth off; to those who may read the app, with auth on."""

from __future__ import annotations

from resolvers import access
from resolvers.context import OpContext
from store import queries
from store.models import MaintainerRole

__all__ = ["user_role"]


async def user_role(ctx: OpContext, *, app: str, username: str) -> MaintainerRole | None:
    """The role `username` has on `app`, or None when none (or no such app).

    With auth off there are no maintainers and everyone may do everything on a registered
    app, so everyone is its admin, as `roles/` says of the caller. With auth on the caller
    needs read access to the app (a deliberate deviation from LAIN, which told anyone who
    administers what).

    Raises (auth on): Unauthenticated, NotFound, Forbidden.
    """
    async with ctx.sessions() as session:
        if ctx.services.auth_enabled:
            row = await access.check_app(ctx, app, session=session)
            return await access.role_on(session, row, username)
        if await queries.app_by_name(session, app) is None:
            return None
        return MaintainerRole.ADMIN
