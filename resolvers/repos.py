"""Repos: the registration of an app's name."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from lainyaml import app_name_problem, registration_name_problem
from resolvers.core import access, audit
from resolvers.core.context import OpContext
from resolvers.core.errors import Conflict, InvalidInput
from resolvers.core.outcomes import mutation
from resolvers.core.pages import check_first, decode_cursor, page_of
from resolvers.readmodel.from_rows import repo_view
from resolvers.readmodel.views import Page, RepoView
from store import queries
from store.models import App, Maintainer, MaintainerRole

__all__ = ["MAX_NAME_LENGTH", "REGISTRATION", "get_repo", "list_repos", "register_repo"]

MAX_NAME_LENGTH = 63
# The audit operation of a user's registration (LAIN's oplog word). Apps the console creates
# itself (resource instances) never have one, which is how it tells the two apart.
REGISTRATION = "REPOSIT"


@mutation("registerRepo")
async def register_repo(ctx: OpContext, *, name: str) -> RepoView:
    """Register an app name.

    Raises:
        InvalidInput: the name breaks LAIN's naming rule, or (auth on) is one the console
            reserves.
        Conflict: the name is registered already.
    """
    access.check_signed_in(ctx)
    # With auth on, names the console derives are reserved: a tenant could otherwise squat
    # another's resource instance. With auth off there are no tenants, and LAIN took them
    # (a copy of an old console's repos lists its resource.<r>.<c> records).
    check = registration_name_problem if ctx.services.auth_enabled else app_name_problem
    problem = check(name, path="name")
    if problem is not None:
        raise InvalidInput(problem.message, field="name")
    if len(name) > MAX_NAME_LENGTH:
        # resource.<resource>.<client> must still fit the column, whatever the two names.
        raise InvalidInput(f"app names are at most {MAX_NAME_LENGTH} characters", field="name")
    try:
        async with ctx.sessions.begin() as session:
            if await queries.app_by_name(session, name) is not None:
                raise Conflict(f"app {name} already exists", field="name")
            app = App(name=name)
            session.add(app)
            if ctx.principal.authenticated:
                # The registering user administers the app, as LAIN's SSO group made them.
                await session.flush()
                session.add(
                    Maintainer(
                        app_id=app.id, username=ctx.principal.name, role=MaintainerRole.ADMIN
                    )
                )
            audit.record(session, ctx.principal, REGISTRATION, name)
    except IntegrityError:
        # Lost a race with a concurrent registration of the same name.
        raise Conflict(f"app {name} already exists", field="name") from None
    return repo_view(app)


async def get_repo(ctx: OpContext, *, name: str) -> RepoView:
    """Raises: Unauthenticated, NotFound, Forbidden."""
    return repo_view(await access.check_app(ctx, name))


async def list_repos(
    ctx: OpContext, *, first: int | None = None, after: str | None = None
) -> Page[RepoView]:
    """The registered apps the caller may read, by name.

    Raises: Unauthenticated, InvalidInput (bad `first` or `after`).
    """
    access.check_signed_in(ctx)
    limit = check_first(first)
    after_name = decode_cursor("repo", after)
    async with ctx.sessions() as session:
        apps = await queries.apps_page(
            session, after=after_name, limit=limit + 1, among=access.readable_app_ids(ctx)
        )
    return page_of(
        [repo_view(app) for app in apps],
        limit,
        "repo",
        lambda repo: repo.name,
        has_previous=after_name is not None,
    )
