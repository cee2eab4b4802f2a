"""What an app uses: resource instances rendered for it, and portals of service apps.

A client's `use_resources` entry gets its own app `resource.<resource>.<client>`, rendered
from the resource's newest release with the client's parameters and deployed before the
client. A `use_services` entry (and each resource's `services`) binds the client to a portal
of the service app; every binding runs as a job of its own, `<service>.portal.<portal>_<client>`.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from backends.types import ProcJob
from lainyaml import (
    AppType,
    LainConfig,
    LainYamlError,
    parse_lain_yaml,
    resource_instance_name,
)
from lainyaml.resources import render_resource_instance
from resolvers.core.errors import InvalidInput
from resolvers.core.jobs import BoundPortal, build_portal_job, portal_job_id
from resolvers.readmodel.from_rows import default_image, release_config
from store import queries
from store.models import App, AppStatus, PortalBinding, Release

__all__ = [
    "USE_RESOURCES_FIELD",
    "Dependencies",
    "InstancePlan",
    "allows",
    "bindings_of_service",
    "drop_client_bindings",
    "portal_job_id",
    "resolve",
    "stage_client_bindings",
]

# The field of an error about a used resource: the lain.yaml path `use_resources.<resource>`.
USE_RESOURCES_FIELD = "use_resources."


@dataclass(frozen=True, slots=True)
class InstancePlan:
    """A resource instance as the client's deploy wants it."""

    resource: str
    name: str  # resource.<resource>.<client>
    meta_version: str  # the resource's release
    lain_yaml: str  # rendered
    image: str  # the resource's release image


@dataclass(frozen=True, slots=True)
class Dependencies:
    instances: tuple[InstancePlan, ...] = ()
    services: tuple[BoundPortal, ...] = ()


def allows(allow_clients: str | None, client: str) -> bool:
    """`allow_clients` is "**" (everyone) or globs separated by commas or spaces."""
    patterns = [p for p in re.split(r"[,\s]+", allow_clients or "**") if p]
    return any(p == "**" or fnmatch.fnmatchcase(client, p) for p in patterns)


async def _deployed_release(
    session: AsyncSession, name: str, what: str, domains: tuple[str, ...], *, field: str
) -> tuple[App, Release, LainConfig]:
    app = await queries.app_by_name(session, name)
    if app is None:
        raise InvalidInput(
            f"{what} {name} does not exist: register and deploy it first", field=field
        )
    if app.meta_version is None or app.status is AppStatus.UNDEPLOYED:
        raise InvalidInput(f"{what} {name} is not deployed: deploy it first", field=field)
    release = await queries.release(session, app.id, app.meta_version)
    config = release_config(release, domains) if release is not None else None
    if release is None or config is None:
        raise InvalidInput(f"{what} {name} has no usable release")
    return app, release, config


def _service_use(
    client: str, service_app: str, release: Release, config: LainConfig, name: str, image: str
) -> BoundPortal:
    portal = config.portal_for_service(name)
    if portal is None:
        raise InvalidInput(f"service app {service_app} exports no service {name}")
    if not allows(portal.allow_clients, client):
        raise InvalidInput(
            f"service {name} of {service_app} does not allow client {client} "
            f"(allow_clients: {portal.allow_clients})"
        )
    return BoundPortal(service_app, name, portal, release.meta_version, image)


async def resolve(
    session: AsyncSession,
    client: str,
    config: LainConfig,
    *,
    registry: str,
    domains: tuple[str, ...],
) -> Dependencies:
    """Check everything the client uses and render its resource instances; writes nothing.

    Raises:
        InvalidInput: a resource or service that is missing, not deployed, not of the right
            kind, exports no such service, does not allow this client, or does not render.
    """
    instances: list[InstancePlan] = []
    services: list[BoundPortal] = []
    for resource, use in config.use_resources.items():
        app, release, _ = await _deployed_release(
            session, resource, "resource", domains, field=USE_RESOURCES_FIELD + resource
        )
        if app.apptype != AppType.RESOURCE:
            raise InvalidInput(f"{resource} is not a resource (it is an {app.apptype})")
        name = resource_instance_name(resource, client)
        image = release.image or default_image(registry, resource, release.meta_version)
        try:
            text = render_resource_instance(
                release.lain_yaml, resource=resource, client=client, context=use.context
            )
            rendered = parse_lain_yaml(text, domains=domains)
        except LainYamlError as exc:
            raise InvalidInput(
                f"resource {resource} does not render for {client}:\n{exc}"
            ) from None
        instances.append(InstancePlan(resource, name, release.meta_version, text, image))
        for service_name in use.services:
            services.append(_service_use(client, name, release, rendered, service_name, image))
    for service_app, names in config.use_services.items():
        app, release, service_config = await _deployed_release(
            session, service_app, "service app", domains, field=f"use_services.{service_app}"
        )
        image = release.image or default_image(registry, service_app, release.meta_version)
        for service_name in names:
            services.append(
                _service_use(client, service_app, release, service_config, service_name, image)
            )
    return Dependencies(tuple(instances), tuple(services))


async def stage_client_bindings(
    session: AsyncSession, client: App, deps: Dependencies, *, domain: str, timezone: str
) -> tuple[list[ProcJob], list[str]]:
    """Write the client's bindings; the jobs to apply and the job ids to remove."""
    existing = {
        (b.service_app_id, b.portal): b
        for b in (
            await session.execute(
                select(PortalBinding).where(PortalBinding.client_app_id == client.id)
            )
        ).scalars()
    }
    service_ids = {
        app.name: app.id
        for app in (
            await queries.apps_by_names(session, sorted({u.service_app for u in deps.services}))
        ).values()
    }
    names = {app_id: name for name, app_id in service_ids.items()}
    jobs: list[ProcJob] = []
    for use in deps.services:
        key = (service_ids[use.service_app], use.portal.name)
        binding = existing.pop(key, None)
        if binding is None:
            binding = PortalBinding(
                client_app_id=client.id,
                service_app_id=key[0],
                portal=use.portal.name,
                service_name=use.service_name,
            )
            session.add(binding)
        binding.deployed = True
        binding.last_error = ""
        jobs.append(build_portal_job(use, client=client.name, domain=domain, timezone=timezone))
    removed = []
    for binding in existing.values():
        service = names.get(binding.service_app_id) or await _app_name(session, binding)
        removed.append(portal_job_id(service, binding.portal, client.name))
        await session.delete(binding)
    return jobs, removed


async def _app_name(session: AsyncSession, binding: PortalBinding) -> str:
    app = await session.get(App, binding.service_app_id)
    return app.name if app is not None else ""


async def bindings_of_service(
    session: AsyncSession, service: App
) -> list[tuple[PortalBinding, str]]:
    """Every binding to one of the service's portals, with the client's name."""
    query = (
        select(PortalBinding, App.name)
        .join(App, App.id == PortalBinding.client_app_id)
        .where(PortalBinding.service_app_id == service.id)
        .order_by(PortalBinding.id)
    )
    return [(binding, name) for binding, name in (await session.execute(query)).all()]


async def drop_client_bindings(session: AsyncSession, client: App) -> list[str]:
    """Forget the client's bindings; the job ids to remove."""
    rows = await session.execute(
        select(PortalBinding, App.name)
        .join(App, App.id == PortalBinding.service_app_id)
        .where(PortalBinding.client_app_id == client.id)
    )
    job_ids = [portal_job_id(service, b.portal, client.name) for b, service in rows.all()]
    await session.execute(delete(PortalBinding).where(PortalBinding.client_app_id == client.id))
    return job_ids
