"""Maintainers: who may touch an app, as `admin` (may also manage maintainers) or `normal`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from resolvers.core import access, audit
from resolvers.core.context import OpContext
from resolvers.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from resolvers.core.outcomes import mutation
from store import queries
from store.models import Maintainer, MaintainerRole

__all__ = [
    "MaintainerRole",
    "MaintainerView",
    "add_maintainer",
    "get_maintainer",
    "list_maintainers",
    "remove_maintainer",
    "user_role",
    "viewer_role",
]

MAX_USERNAME = 200


@dataclass(frozen=True, slots=True)
class MaintainerView:
    app: str
    username: str
    role: MaintainerRole
    created_at: datetime


def _view(app: str, row: Maintainer) -> MaintainerView:
    return MaintainerView(app=app, username=row.username, role=row.role, created_at=row.created_at)


def _role(role: str) -> MaintainerRole:
    # LAIN's SSO accepted "" for normal.
    try:
        return MaintainerRole(role or "normal")
    except ValueError:
        raise InvalidInput(f"unknown role {role!r}: use admin or normal", field="role") from None


def _require_auth(ctx: OpContext) -> None:
    # Without auth there are no identities to grant anything to; LAIN answered the same.
    if not ctx.services.auth_enabled:
        raise Forbidden("maintainer service not provided, try to open console auth first")


def _username(username: str) -> str:
    name = username.strip()
    if not name or len(name) > MAX_USERNAME or any(c.isspace() for c in name):
        raise InvalidInput(
            f"username must be 1 to {MAX_USERNAME} characters without spaces", field="username"
        )
    return name


async def list_maintainers(ctx: OpContext, *, app: str) -> list[MaintainerView]:
    """Raises: Unauthenticated, NotFound, Forbidden."""
    async with ctx.sessions() as session:
        row = await access.check_app(ctx, app, session=session)
        return [_view(app, m) for m in await queries.maintainers_of(session, row.id)]


async def get_maintainer(ctx: OpContext, *, app: str, username: str) -> MaintainerView:
    """Raises: Unauthenticated, NotFound (app or maintainer), Forbidden."""
    for maintainer in await list_maintainers(ctx, app=app):
        if maintainer.username == username:
            return maintainer
    raise NotFound(f"{username} is not a maintainer of app {app}", field="username")


@mutation("addMaintainer")
async def add_maintainer(
    ctx: OpContext, *, app: str, username: str, role: str = "normal"
) -> MaintainerView:
    """Add a maintainer, or change the role of an existing one. Admins of the app only.

    Raises: Unauthenticated, NotFound, Forbidden, InvalidInput, Conflict (demoting the last
    admin).
    """
    _require_auth(ctx)
    name, wanted = _username(username), _role(role)
    try:
        async with ctx.sessions.begin() as session:
            row = await access.check_app_admin(ctx, app, session=session)
            existing = await _maintainer(session, row.id, name)
            if existing is None:
                existing = Maintainer(app_id=row.id, username=name, role=wanted)
                session.add(existing)
            else:
                if existing.role is MaintainerRole.ADMIN and wanted is not MaintainerRole.ADMIN:
                    await _keep_an_admin(session, row.id, app)
                existing.role = wanted
            audit.record(
                session, ctx.principal, "ADD_MAINTAINER", app, message=f"{name} as {wanted}"
            )
            await session.flush()
    except IntegrityError:
        raise Conflict(f"{name} was added to app {app} at the same time; retry") from None
    return _view(app, existing)


@mutation("removeMaintainer")
async def remove_maintainer(ctx: OpContext, *, app: str, username: str) -> None:
    """Admins of the app only; the last admin stays.

    Raises: Unauthenticated, NotFound, Forbidden, Conflict.
    """
    _require_auth(ctx)
    async with ctx.sessions.begin() as session:
        row = await access.check_app_admin(ctx, app, session=session)
        target = await _maintainer(session, row.id, username)
        if target is None:
            raise NotFound(f"{username} is not a maintainer of app {app}", field="username")
        if target.role is MaintainerRole.ADMIN:
            await _keep_an_admin(session, row.id, app)
        await session.execute(delete(Maintainer).where(Maintainer.id == target.id))
        audit.record(session, ctx.principal, "REMOVE_MAINTAINER", app, message=username)


async def _maintainer(session: AsyncSession, app_id: int, username: str) -> Maintainer | None:
    query = select(Maintainer).where(Maintainer.app_id == app_id, Maintainer.username == username)
    return (await session.execute(query)).scalar_one_or_none()


async def _keep_an_admin(session: AsyncSession, app_id: int, app: str) -> None:
    admins = (
        await session.execute(
            select(func.count())
            .select_from(Maintainer)
            .where(Maintainer.app_id == app_id, Maintainer.role == MaintainerRole.ADMIN)
        )
    ).scalar_one()
    if admins <= 1:
        raise Conflict(f"app {app} must keep at least one admin", field="username")


async def viewer_role(ctx: OpContext, *, app: str) -> MaintainerRole | None:
    """The caller's role on the app; global admins count as `admin`. Raises: as check_app."""
    async with ctx.sessions() as session:
        return await access.caller_role(ctx, app, session=session)


async def user_role(ctx: OpContext, *, app: str, username: str) -> MaintainerRole | None:
    """The role `username` has on `app`, or None when none (or no such app): LAIN's
    `roles/<user>/`.

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
