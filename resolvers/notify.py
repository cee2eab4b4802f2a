"""Image-push notifications: the subscribers of an event type, and telling them (COMPAT 3.7,
3.15, 8.3).

LAIN kept the subscribers as a JSON list in etcd; here they are rows, in the order they were
added, duplicates included. The only event type is `imagepush`. A push is announced to every
subscriber with a short timeout; a subscriber that fails is logged and otherwise ignored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from resolvers.core import access
from resolvers.core.context import OpContext
from resolvers.core.errors import InvalidInput, NotFound
from resolvers.lain import catalog
from resolvers.readmodel.from_rows import release_config
from store import queries
from store.models import NotifySubscriber

__all__ = [
    "IMAGE_PUSH",
    "NOTIFY_TIMEOUT",
    "PushPayload",
    "add_subscriber",
    "image_pushed",
    "list_subscribers",
    "remove_subscriber",
]

log = logging.getLogger(__name__)

IMAGE_PUSH = "imagepush"
NOTIFY_TYPES = frozenset({IMAGE_PUSH})
NOTIFY_TIMEOUT = 5.0  # seconds per subscriber
NOTIFY_CONCURRENCY = 8  # subscribers told at once


def _check_type(notify_type: str) -> None:
    if notify_type not in NOTIFY_TYPES:
        raise InvalidInput(f"unknown notify type {notify_type}", field="notifyType")


def _check_manager(ctx: OpContext) -> None:
    # The subscribers decide where the console POSTs from inside its network.
    access.check_global_admin(ctx, "manage notify subscribers")


async def list_subscribers(ctx: OpContext, *, notify_type: str) -> list[str]:
    """The subscribed URLs, oldest first.

    Raises: Unauthenticated, Forbidden (auth on and not a global admin), InvalidInput
    (unknown type).
    """
    _check_manager(ctx)
    _check_type(notify_type)
    async with ctx.sessions() as session:
        return await _urls(session, notify_type)


async def _urls(session: AsyncSession, notify_type: str) -> list[str]:
    query = (
        select(NotifySubscriber.url)
        .where(NotifySubscriber.type == notify_type)
        .order_by(NotifySubscriber.id)
    )
    return list((await session.execute(query)).scalars())


async def add_subscriber(ctx: OpContext, *, notify_type: str, url: str) -> str:
    """Append `url` (again, if it is there already).

    Raises: Unauthenticated, Forbidden (auth on and not a global admin), InvalidInput
    (unknown type; with auth on, a URL the console must not send to, field notifyUrl).
    """
    _check_manager(ctx)
    _check_type(notify_type)
    if ctx.services.auth_enabled:
        await ctx.services.webhooks.check(url)
    async with ctx.sessions.begin() as session:
        session.add(NotifySubscriber(type=notify_type, url=url))
    return url


async def remove_subscriber(ctx: OpContext, *, notify_type: str, url: str) -> str:
    """Remove the oldest subscription of `url`, as a list's `remove` did.

    Raises: Unauthenticated, Forbidden (auth on and not a global admin), InvalidInput
    (unknown type), NotFound (`url` is not subscribed).
    """
    _check_manager(ctx)
    _check_type(notify_type)
    async with ctx.sessions.begin() as session:
        query = (
            select(NotifySubscriber)
            .where(NotifySubscriber.type == notify_type, NotifySubscriber.url == url)
            .order_by(NotifySubscriber.id)
            .limit(1)
        )
        row = (await session.execute(query)).scalar_one_or_none()
        if row is None:
            raise NotFound(f"{url} is not subscribed to {notify_type}", field="notifyUrl")
        await session.delete(row)
    return url


@dataclass(frozen=True, slots=True)
class PushPayload:
    """What subscribers are sent, in LAIN's field names and order (`as_json`)."""

    appname: str
    commits: Any
    operator: str
    lastid: str
    nextid: str
    giturl: str
    authors: Any

    def as_json(self) -> dict[str, Any]:
        return {
            "appname": self.appname,
            "commits": self.commits,
            "operator": self.operator,
            "lastid": self.lastid,
            "nextid": self.nextid,
            "giturl": self.giturl,
            "authors": self.authors,
        }


def _sha(meta_version: str) -> str:
    return meta_version.partition("-")[2]


async def image_pushed(
    ctx: OpContext, *, app: str, authors: Any = None, commits: Any = None
) -> PushPayload:
    """Tell every `imagepush` subscriber about the app's newest release, in LAIN's order of
    checks. `authors` and `commits` are used only when both are given (not None): without a
    GitLab to ask, there is no other way to learn them.

    Raises:
        Unauthenticated, NotFound (field "app"), Forbidden: as access.check_app.
        NotFound (field "metaVersion"): the app has no release.
        InvalidInput (field "giturl"): the newest release's lain.yaml has no giturl, or not
            the bound one; the message is LAIN's.
        InvalidInput (field "commits"): authors and commits were not both given.
        InvalidInput (field "changes"): authors or commits is empty.
    """
    row = await access.check_app(ctx, app)
    async with ctx.sessions() as session:
        source = await queries.app_by_name(session, catalog.image_repository(app))
        latest = await queries.latest_release(session, source.id) if source else None
    if latest is None:
        raise NotFound(f"app {app} has no release", field="metaVersion")
    details = await catalog.repo_details(ctx, app=app)
    config = release_config(latest, ctx.services.domains)
    meta_giturl = catalog.normalise_giturl((config.giturl if config else None) or "")
    if not meta_giturl:
        raise InvalidInput("No Giturl bound", field="giturl")
    if meta_giturl != details.giturl:
        raise InvalidInput(
            f"app giturl '{meta_giturl}' doesn't match with bound url '{details.giturl}'",
            field="giturl",
        )
    if authors is None or commits is None:
        raise InvalidInput("Fetch commmits information failed", field="commits")
    if not authors or not commits:
        raise InvalidInput("Nothing Changed", field="changes")
    payload = PushPayload(
        appname=row.name,
        commits=commits,
        operator=ctx.principal.name,
        lastid=_sha(details.meta_version),
        nextid=_sha(latest.meta_version),
        giturl=details.giturl,
        authors=authors,
    )
    # The pusher need not be a global admin: the subscribers are read on its behalf.
    async with ctx.sessions() as session:
        urls = await _urls(session, IMAGE_PUSH)
    await _deliver(ctx, urls, payload.as_json())
    return payload


async def _deliver(ctx: OpContext, urls: Sequence[str], payload: dict[str, Any]) -> None:
    """POST `payload` to each URL, a few at a time; failures are logged, never raised."""
    limit = asyncio.Semaphore(NOTIFY_CONCURRENCY)
    sender = ctx.services.webhooks
    checked = ctx.services.auth_enabled

    async def post(url: str) -> None:
        async with limit:
            try:
                async with asyncio.timeout(NOTIFY_TIMEOUT):
                    response = await sender.post_json(url, payload, checked=checked)
            except Exception as exc:  # any failure of one subscriber is only logged
                log.warning("image-push notification to %s failed: %r", url, exc)
                return
            if response.status_code >= 400:
                log.warning("image-push notification to %s answered %s", url, response.status_code)

    await asyncio.gather(*(post(url) for url in urls))
