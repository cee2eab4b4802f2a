"""Reading the links between apps: what an app uses, and who uses it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lainyaml import resource_instance_name
from resolvers.core import access
from resolvers.core.context import OpContext
from resolvers.readmodel.from_rows import release_config
from store import queries
from store.models import App, PortalBinding

__all__ = ["AppUses", "ResourceUseView", "ServiceUseView", "app_uses", "clients", "instances_of"]


@dataclass(frozen=True, slots=True)
class ServiceUseView:
    app: str
    services: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ResourceUseView:
    resource: str
    services: tuple[str, ...]
    instance: str  # resource.<resource>.<client>


@dataclass(frozen=True, slots=True)
class AppUses:
    services: tuple[ServiceUseView, ...] = ()
    resources: tuple[ResourceUseView, ...] = ()


async def app_uses(ctx: OpContext, *, name: str) -> AppUses:
    """What the deployed release of the app declares. Raises: as check_app."""
    async with ctx.sessions() as session:
        app = await access.check_app(ctx, name, session=session)
        release = await queries.release(session, app.id, app.meta_version or "")
    config = release_config(release, ctx.services.domains) if release is not None else None
    if config is None:
        return AppUses()
    return AppUses(
        services=tuple(ServiceUseView(s, names) for s, names in config.use_services.items()),
        resources=tuple(
            ResourceUseView(r, use.services, resource_instance_name(r, name))
            for r, use in config.use_resources.items()
        ),
    )


async def instances_of(ctx: OpContext, *, resource: str) -> list[str]:
    """The names of the resource's instances (`resource.<resource>.*`), deployed or not.

    Raises: as check_app, on the resource (LAIN checks the resource's maintainers). Reading
    each instance is checked again where it is read: a resource's maintainer added after an
    instance was created is not one of that instance's maintainers.
    """
    async with ctx.sessions() as session:
        await access.check_app(ctx, resource, session=session)
        return await _instance_names(session, resource)


async def _instance_names(session: AsyncSession, resource: str) -> list[str]:
    prefix = resource_instance_name(resource, "")
    query = select(App.name).where(App.name.startswith(prefix, autoescape=True))
    return list((await session.execute(query.order_by(App.name))).scalars())


async def clients(ctx: OpContext, *, name: str) -> list[str]:
    """The names of the apps bound to this service's portals, or of this resource's clients
    that still exist. Raises: as check_app, on `name`; reading each client is checked again
    where it is read."""
    async with ctx.sessions() as session:
        app = await access.check_app(ctx, name, session=session)
        bound = select(PortalBinding.client_app_id).where(PortalBinding.service_app_id == app.id)
        found = set((await session.execute(select(App.name).where(App.id.in_(bound)))).scalars())
        users = [instance.rsplit(".", 1)[1] for instance in await _instance_names(session, name)]
        found.update(await queries.apps_by_names(session, users))
    return sorted(found)
