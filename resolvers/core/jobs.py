"""Desired state as the jobs a scheduler runs."""

from __future__ import annotations

from dataclasses import dataclass

from backends.types import ProcJob
from lainyaml import ProcSpec
from lainyaml.procfields import DEFAULT_FILTER
from resolvers.readmodel.views import ProcView

__all__ = ["LOG_DIR", "BoundPortal", "build_job", "build_portal_job", "portal_job_id"]

LOG_DIR = "/lain/logs"


@dataclass(frozen=True, slots=True)
class BoundPortal:
    """One portal of a service app the client binds to (the service may be an instance)."""

    service_app: str
    service_name: str
    portal: ProcSpec
    meta_version: str
    image: str


def portal_job_id(service_app: str, portal: str, client: str) -> str:
    # Names never hold "_", so the client part is unambiguous (LAIN's canaries did the same).
    return f"{service_app}.portal.{portal}_{client}"


def _env(spec: ProcSpec, injected: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    # The lain.yaml env, then what the console added, in its order: TZ, then LAIN_*.
    pairs = [tuple(item.split("=", 1)) if "=" in item else (item, "") for item in spec.env]
    return tuple((key, value) for key, value in [*pairs, *injected])


def _job(
    spec: ProcSpec,
    *,
    app: str,
    proc: str,
    proc_type: str,
    meta_version: str,
    image: str,
    env: tuple[tuple[str, str], ...],
    num_instances: int,
    cpu: int,
    memory_bytes: int,
    driver: str = "docker",
) -> ProcJob:
    return ProcJob(
        app=app,
        proc=proc,
        proc_type=proc_type,
        meta_version=meta_version,
        image=image,
        num_instances=num_instances,
        cpu=cpu,
        memory_bytes=memory_bytes,
        cmd=spec.cmd,
        entrypoint=spec.entrypoint,
        env=env,
        port=spec.port.number if spec.port is not None else None,
        port_protocol=str(spec.port.protocol) if spec.port is not None else "tcp",
        healthcheck=spec.healthcheck,
        working_dir=spec.working_dir,
        user=spec.user,
        setup_time=spec.setup_time,
        kill_timeout=spec.kill_timeout,
        driver=driver,
        # /lain/logs is every LAIN proc's: a backend that keeps data keeps it always.
        persistent_dirs=tuple(d for d in spec.persistent_dirs if d != LOG_DIR),
        mountpoints=spec.mountpoints,
        secret_files=spec.secret_files,
        logs=spec.logs,
        stateful=spec.stateful,
        filters=tuple(f for f in spec.filters if f != DEFAULT_FILTER),
        container_healthcheck=(
            spec.container_healthcheck.cmd
            if spec.container_healthcheck is not None and not spec.container_healthcheck.disabled
            else ""
        ),
    )


def build_job(proc: ProcView, *, domain: str, timezone: str, driver: str = "docker") -> ProcJob:
    """The job for `proc`: its spec, its overrides and the variables LAIN injects."""
    env = _env(
        proc.spec,
        [
            ("TZ", timezone),
            ("LAIN_APPNAME", proc.app),
            ("LAIN_APP_RELEASE_VERSION", proc.meta_version),
            ("LAIN_PROCNAME", proc.name),
            ("LAIN_DOMAIN", domain),
        ],
    )
    return _job(
        proc.spec,
        app=proc.app,
        proc=proc.name,
        proc_type=str(proc.type),
        meta_version=proc.meta_version,
        image=proc.image,
        env=env,
        num_instances=proc.num_instances,
        cpu=proc.cpu,
        memory_bytes=proc.memory_bytes,
        driver=driver,
    )


def build_portal_job(use: BoundPortal, *, client: str, domain: str, timezone: str) -> ProcJob:
    """The job that runs a service's portal for one client app."""
    spec = use.portal
    env = _env(
        spec,
        [
            ("TZ", timezone),
            ("LAIN_APPNAME", use.service_app),
            ("LAIN_APP_RELEASE_VERSION", use.meta_version),
            ("LAIN_PROCNAME", spec.name),
            ("LAIN_DOMAIN", domain),
            ("LAIN_SERVICE_NAME", use.service_name),
            ("LAIN_CLIENT_APPNAME", client),
        ],
    )
    app, proc_type, proc = portal_job_id(use.service_app, spec.name, client).rsplit(".", 2)
    return _job(
        spec,
        app=app,
        proc=proc,
        proc_type=proc_type,
        meta_version=use.meta_version,
        image=spec.image or use.image,
        env=env,
        num_instances=spec.num_instances,
        cpu=spec.cpu,
        memory_bytes=spec.memory_bytes,
    )
