"""Who may do what (COMPAT.md 1.7 and 6): the one place the permission rules live.

With auth off every caller is the anonymous `unknown` user and may do anything LAIN allowed.
With auth on, reading lists needs a valid principal, and touching an app needs a maintainer
role on it (`admin` or `normal`) or the global admin flag; managing maintainers needs `admin`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from resolvers.core.context import CheckedApp, OpContext
from resolvers.core.errors import DomainError, Forbidden, NotFound, Unauthenticated
from resolvers.core.pages import check_first, decode_cursor, page_of
from resolvers.readmodel.views import Page
from store import queries
from store.models import App, Maintainer, MaintainerRole
from store.queries import AppRow

__all__ = [
    "AppRow",
    "caller_role",
    "check_app",
    "check_app_admin",
    "check_global_admin",
    "check_signed_in",
    "checked_app",
    "readable_among",
    "readable_app_ids",
    "readable_apps",
    "readable_deployed_apps",
    "readable_deployed_page",
    "refusal",
    "role_on",
]


def check_signed_in(ctx: OpContext) -> None:
    """Raises: Unauthenticated, when auth is on and the caller has no valid credentials."""
    if ctx.services.auth_enabled and not ctx.principal.authenticated:
        raise Unauthenticated("unauthorized : don't have the access to the operation")


def check_global_admin(ctx: OpContext, action: str) -> None:
    """With auth on, only a global admin may `action`. Raises: Unauthenticated, Forbidden."""
    check_signed_in(ctx)
    if ctx.services.auth_enabled and not ctx.principal.is_admin:
        raise Forbidden(f"forbidden : only a global admin may {action}")


async def role_on(session: AsyncSession, app: App, username: str) -> MaintainerRole | None:
    query = select(Maintainer.role).where(
        Maintainer.app_id == app.id, Maintainer.username == username
    )
    return (await session.execute(query)).scalar_one_or_none()


async def check_app(ctx: OpContext, app: str, *, session: AsyncSession | None = None) -> App:
    """The app, if the caller may touch it; LAIN's order: 401, then 404, then 403.

    In a session, the row is read there (to be written). Raises: Unauthenticated, NotFound,
    Forbidden.
    """
    return (await _check(ctx, app, session)).row


async def checked_app(ctx: OpContext, app: str, *, writes: bool) -> CheckedApp:
    """check_app, for a front door that checks before its handler runs: put the answer in
    the handler's OpContext (`checked`) and the checks here do not ask the database again.
    Unless the handler `writes`, its reads of the app take this row too.
    """
    checked = await _check(ctx, app, None)
    return replace(checked, row_stays_current=not writes)


async def _check(ctx: OpContext, app: str, session: AsyncSession | None) -> CheckedApp:
    check_signed_in(ctx)
    done = ctx.checked if ctx.checked is not None and ctx.checked.row.name == app else None
    if session is None:
        if done is not None and done.row_stays_current:
            return done
        async with ctx.sessions() as own:
            return await _check(ctx, app, own)
    row = await queries.app_by_name(session, app)
    if row is None:
        raise NotFound(f"app with appname {app} not exist, has not been reposited yet", field="app")
    if done is not None:
        return CheckedApp(row, done.role, done.row_stays_current)
    if not ctx.services.auth_enabled or ctx.principal.is_admin:
        return CheckedApp(row, None)
    role = await role_on(session, row, ctx.principal.name)
    if role is None:
        raise refusal(ctx, app)
    return CheckedApp(row, role)


def refusal(ctx: OpContext, app: str) -> DomainError:
    """The error for an app the caller may not read: the one check_app raises."""
    if ctx.services.auth_enabled and not ctx.principal.authenticated:
        return Unauthenticated("unauthorized : don't have the access to the operation")
    return Forbidden(f"forbidden : don't have the access to app {app}")


async def caller_role(ctx: OpContext, app: str, *, session: AsyncSession) -> MaintainerRole:
    """The caller's role on the app; global admins, and everyone with auth off, count as
    `admin`. Raises: as check_app."""
    role = (await _check(ctx, app, session)).role
    return MaintainerRole.ADMIN if role is None else role  # None: auth off, or a global admin


async def check_app_admin(ctx: OpContext, app: str, *, session: AsyncSession) -> App:
    """Like check_app, but the caller must be an `admin` maintainer or a global admin.

    Raises: Unauthenticated, NotFound, Forbidden.
    """
    checked = await _check(ctx, app, session)
    if ctx.principal.is_admin:
        return checked.row
    role = checked.role
    if role is None:  # the check asked for none (auth off)
        role = await role_on(session, checked.row, ctx.principal.name)
    if role is not MaintainerRole.ADMIN:
        raise Forbidden(f"only an admin of app {app} may manage its maintainers")
    return checked.row


def readable_app_ids(ctx: OpContext) -> Select[int] | None:
    """A subquery of the app ids the caller may read, or None when it may read them all."""
    if not ctx.services.auth_enabled or ctx.principal.is_admin:
        return None
    return select(Maintainer.app_id).where(Maintainer.username == ctx.principal.name)


async def readable_among(
    ctx: OpContext, session: AsyncSession, app_ids: Collection[int]
) -> set[int]:
    """Which of these apps the caller may read (check_app's rule, for many apps at once).

    Every read that reaches an app through another one (a service, a resource instance, a
    client) filters by it: being allowed to use a portal is not permission to read its app.
    """
    if not ctx.services.auth_enabled or ctx.principal.is_admin:
        return set(app_ids)
    if not ctx.principal.authenticated or not app_ids:
        return set()
    query = select(Maintainer.app_id).where(
        Maintainer.username == ctx.principal.name, Maintainer.app_id.in_(list(app_ids))
    )
    return set((await session.execute(query)).scalars())


async def readable_apps(
    ctx: OpContext, session: AsyncSession, names: Collection[str]
) -> tuple[dict[str, AppRow], list[str]]:
    """The named apps that exist, by name: those the caller may read, and the others' names."""
    found = await queries.app_rows_by_names(session, sorted(set(names)))
    readable = await readable_among(ctx, session, [app.id for app in found.values()])
    refused = [name for name, app in found.items() if app.id not in readable]
    return {name: app for name, app in found.items() if app.id in readable}, refused


async def readable_deployed_apps(
    ctx: OpContext,
    session: AsyncSession,
    *,
    apptype: str | None = None,
    after: str | None = None,
    limit: int | None = None,
) -> list[AppRow]:
    """The deployed apps the caller may read, by name: what both doors list.

    Optionally of one type, after a name, at most `limit`. Raises: Unauthenticated.
    """
    check_signed_in(ctx)
    return await queries.app_rows_page(
        session,
        after=after,
        limit=limit,
        apptype=apptype,
        deployed_only=True,
        among=readable_app_ids(ctx),
    )


async def readable_deployed_page(
    ctx: OpContext,
    session: AsyncSession,
    *,
    apptype: str | None,
    first: int | None,
    after: str | None,
) -> Page[AppRow]:
    """A page of readable_deployed_apps (`first` after the cursor `after`): how every list
    of apps pages. Raises: Unauthenticated, InvalidInput."""
    check_signed_in(ctx)
    limit = check_first(first)
    after_name = decode_cursor("app", after)
    rows = await readable_deployed_apps(
        ctx,
        session,
        apptype=None if apptype is None else str(apptype),  # a plain str, for the driver
        after=after_name,
        limit=limit + 1,
    )
    return page_of(rows, limit, "app", lambda row: row.name, has_previous=after_name is not None)
