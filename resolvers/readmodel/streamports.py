"""The cluster-wide stream-router ports (lain.yaml `ports:`) the deployed procs claim."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from resolvers.core.context import OpContext
from resolvers.readmodel.from_rows import proc_views
from resolvers.readmodel.views import AppType, ProcType
from store import queries
from store.models import App

__all__ = ["StreamPortView", "used_stream_ports"]


@dataclass(frozen=True, slots=True)
class StreamPortView:
    src: int  # the port claimed on every node, 9500-10000
    dst: int  # the container port it leads to
    proto: str  # "tcp" or "udp"
    app: str
    job_id: str  # the proc's pod group, <app>.<proctype>.<proc>


async def used_stream_ports(ctx: OpContext) -> list[StreamPortView]:
    """Every port a deployed proc claims, by port number.

    Open to everyone, as LAIN's list was: it says which ports are taken, so a new app can
    pick a free one. A resource is a template and a portal runs with its clients: neither
    claims ports of its own.
    """
    query = (
        select(App)
        .where(App.meta_version.is_not(None), App.apptype != str(AppType.RESOURCE))
        .order_by(App.name)
    )
    async with ctx.sessions() as session:
        apps = list((await session.execute(query)).scalars())
        procs = await queries.procs_of_apps(session, [app.id for app in apps])
        wanted = {(p.app_id, p.meta_version) for rows in procs.values() for p in rows}
        releases = await queries.releases_by_versions(session, sorted(wanted))
    ports: list[StreamPortView] = []
    for app in apps:
        views = proc_views(
            app.name,
            app.id,
            procs[app.id],
            releases,
            registry=ctx.services.registry,
            domains=ctx.services.domains,
        )
        for view in views:
            if not view.deployed or view.type is ProcType.PORTAL:
                continue
            ports.extend(
                StreamPortView(m.src, m.dst, str(m.proto), app.name, view.job_id)
                for m in view.spec.ports
            )
    return sorted(ports, key=lambda port: port.src)
