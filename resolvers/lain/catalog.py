"""What LAIN's registry used to answer: an app's versions, and its bound giturl and version."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from lainyaml import parse_resource_instance_name
from resolvers.core import access
from resolvers.core.context import OpContext
from resolvers.readmodel.from_rows import release_config
from resolvers.readmodel.views import RepoView
from resolvers.repos import list_repos
from store import queries
from store.models import Release

__all__ = [
    "RepoDetails",
    "all_repos",
    "image_repository",
    "normalise_giturl",
    "repo_details",
    "version_tags",
]


@dataclass(frozen=True, slots=True)
class RepoDetails:
    app: str
    giturl: str  # "" until the first deploy, and again after an undeploy
    meta_version: str  # the deployed release, or ""


async def all_repos(ctx: OpContext) -> list[RepoView]:
    """Every registered app the caller may read, by name. Raises: Unauthenticated."""
    repos: list[RepoView] = []
    after: str | None = None
    while True:
        page = await list_repos(ctx, after=after)
        repos.extend(page.items)
        if not page.has_next:
            return repos
        after = page.end_cursor


def image_repository(app: str) -> str:
    """Whose releases an app runs: a resource instance `resource.<r>.<client>` runs `<r>`'s."""
    parsed = parse_resource_instance_name(app)
    return parsed[0] if parsed is not None else app


async def version_tags(ctx: OpContext, *, app: str) -> list[str]:
    """The app's release versions in LAIN's order: newest timestamp first, one per timestamp.

    LAIN keyed versions by their timestamp, so two releases made in the same second show as
    one; the one kept here is the greater sha, which makes the choice deterministic. A resource
    instance runs its resource's releases, so those are listed.

    Raises: Unauthenticated, NotFound, Forbidden.
    """
    await access.check_app(ctx, app)
    source = image_repository(app)
    async with ctx.sessions() as session:
        row = await queries.app_by_name(session, source)
        if row is None:
            return []
        query = (
            select(Release.meta_version, Release.meta_timestamp)
            .where(Release.app_id == row.id)
            .order_by(Release.meta_timestamp.desc(), Release.meta_version.desc())
        )
        rows = (await session.execute(query)).all()
    tags: dict[int, str] = {}
    for version, timestamp in rows:
        tags.setdefault(timestamp, version)
    return list(tags.values())


def normalise_giturl(url: str) -> str:
    """As LAIN bound it: without a trailing `.git`, with `http://` when no scheme is given."""
    url = url.strip()
    if not url:
        return ""
    url = url.removesuffix(".git")
    return url if url.startswith("http") else f"http://{url}"


async def repo_details(ctx: OpContext, *, app: str) -> RepoDetails:
    """The giturl bound by the deployed release and its meta_version ("" when undeployed).

    Raises: Unauthenticated, NotFound, Forbidden.
    """
    row = await access.check_app(ctx, app)
    if row.meta_version is None:
        return RepoDetails(app=app, giturl="", meta_version="")
    giturl = row.giturl
    if not giturl:
        async with ctx.sessions() as session:
            release = await queries.release(session, row.id, row.meta_version)
        config = release_config(release, ctx.services.domains) if release is not None else None
        giturl = normalise_giturl(config.giturl or "") if config is not None else ""
    return RepoDetails(app=app, giturl=giturl, meta_version=row.meta_version)
