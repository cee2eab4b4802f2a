"""Releases: a meta_version plus its lain.yaml (and optionally its image), immutable."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lainyaml import InvalidMetaVersion, LainYamlError, parse_meta_version
from resolvers.core import access, audit
from resolvers.core.context import OpContext
from resolvers.core.errors import Conflict, InvalidInput, NotFound
from resolvers.core.outcomes import mutation
from resolvers.core.pages import check_first, decode_cursor, page_of
from resolvers.readmodel.from_rows import release_view
from resolvers.readmodel.views import Page, ReleaseView, parse_release_config
from store import queries
from store.models import App, Release

__all__ = ["get_release", "list_releases", "publish_release", "require_app"]

MAX_IMAGE_LENGTH = 1000


async def require_app(session: AsyncSession, name: str, *, for_update: bool = False) -> App:
    """The app's row (locked for the transaction with `for_update`). Raises: NotFound."""
    app = await queries.app_by_name(session, name, for_update=for_update)
    if app is None:
        raise NotFound(f"app {name} does not exist", field="app")
    return app


@mutation("publishRelease")
async def publish_release(
    ctx: OpContext, *, app: str, meta_version: str, lain_yaml: str, image: str | None = None
) -> ReleaseView:
    """Store a release after validating everything about it.

    Raises:
        NotFound: the app is not registered.
        InvalidInput: bad meta_version, lain.yaml (every problem listed; no procs at all),
            appname or image.
        Conflict: the app already has a release with that meta_version.
    """
    await access.check_app(ctx, app)  # NotFound or Forbidden, whatever the input
    try:
        version = parse_meta_version(meta_version)
    except InvalidMetaVersion as exc:
        raise InvalidInput(str(exc), field="metaVersion") from None
    try:
        config = parse_release_config(lain_yaml, ctx.services.domains)
    except LainYamlError as exc:
        raise InvalidInput(f"invalid lain.yaml:\n{exc}", field="lainYaml") from None
    if config.appname != app:
        raise InvalidInput(
            f"appname dont match: lain.yaml says {config.appname}, the app is {app}",
            field="lainYaml",
        )
    if not config.procs:
        # Deployed, it would run nothing; as an update it would remove every running proc.
        raise InvalidInput(
            "invalid lain.yaml: a release must define at least one proc "
            "(web, worker, oneshot, service.<name> ...)",
            field="lainYaml",
        )
    image = (image or "").strip()
    if len(image) > MAX_IMAGE_LENGTH or any(c.isspace() for c in image):
        raise InvalidInput("image must be an image reference without spaces", field="image")
    try:
        async with ctx.sessions.begin() as session:
            row = await require_app(session, app)
            if await queries.release(session, row.id, meta_version) is not None:
                raise Conflict(
                    f"app {app} already has a release {meta_version}", field="metaVersion"
                )
            release = Release(
                app_id=row.id,
                meta_version=meta_version,
                meta_timestamp=version.timestamp,
                lain_yaml=lain_yaml,
                image=image,
            )
            session.add(release)
            audit.record(session, ctx.principal, "PUBLISH", app, meta_version=meta_version)
    except IntegrityError:
        raise Conflict(
            f"app {app} already has a release {meta_version}", field="metaVersion"
        ) from None
    return release_view(app, release, ctx.services.domains)


async def get_release(ctx: OpContext, *, app: str, meta_version: str) -> ReleaseView:
    """Raises: Unauthenticated, Forbidden, NotFound (app or release)."""
    async with ctx.sessions() as session:
        row = await access.check_app(ctx, app, session=session)
        release = await queries.release(session, row.id, meta_version)
    if release is None:
        raise NotFound(f"app {app} has no release {meta_version}", field="metaVersion")
    return release_view(app, release, ctx.services.domains)


async def list_releases(
    ctx: OpContext, *, app: str, first: int | None = None, after: str | None = None
) -> Page[ReleaseView]:
    """An app's releases, newest first. Raises: Unauthenticated, Forbidden, NotFound,
    InvalidInput."""
    limit = check_first(first)
    after_version = decode_cursor("release", after)
    async with ctx.sessions() as session:
        row = await access.check_app(ctx, app, session=session)
        previous = None
        if after_version is not None:
            previous = await queries.release(session, row.id, after_version)
            if previous is None:
                raise InvalidInput("after: that release no longer exists", field="after")
        releases = await queries.releases_page(session, row.id, after=previous, limit=limit + 1)
    return page_of(
        [release_view(app, release, ctx.services.domains) for release in releases],
        limit,
        "release",
        lambda release: release.meta_version,
        has_previous=previous is not None,
    )
