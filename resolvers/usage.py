"""Reading the links between apps: what an app uses, and who uses it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from resolvers import access
from resolvers.context import OpContext
from resolvers.rows import app_view, release_config
from resolvers.views import AppView
from spec import resource_instance_name
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


async def instances_of(ctx: OpContext, *, resource: str) -> list[AppView]:
    """The resource's instances (`resource.<resource>.*`), deployed or not, by name.

    Raises: as check_app, on the resource (LAIN checks the resource's maintainers).
    """
    async with ctx.sessions() as session:
        await access.check_app(ctx, resource, session=session)
        prefix = resource_instance_name(resource, "")
        rows = await session.execute(
            select(App).where(App.name.startswith(prefix, autoescape=True)).order_by(App.name)
        )
        return [app_view(app) for app in rows.scalars()]


async def clients(ctx: OpContext, *, name: str) -> list[AppView]:
    """Apps bound to this service's portals, or the clients of this resource's instances."""
    async with ctx.sessions() as session:
        app = await access.check_app(ctx, name, session=session)
        bound = select(PortalBinding.client_app_id).where(PortalBinding.service_app_id == app.id)
        rows = (
            await session.execute(select(App).where(App.id.in_(bound)).order_by(App.name))
        ).scalars()
        found = {row.name: app_view(row) for row in rows}
    for instance in await instances_of(ctx, resource=name):
        client = instance.name.rsplit(".", 1)[1]
        async with ctx.sessions() as session:
            row = await queries.app_by_name(session, client)
        if row is not None:
            found[client] = app_view(row)
    return [found[key] for key in sorted(found)]
