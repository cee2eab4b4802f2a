"""A proc's desired state as the job a scheduler runs."""

from __future__ import annotations

from backends.types import ProcJob
from resolvers.views import ProcView

__all__ = ["build_job"]


def build_job(proc: ProcView, *, domain: str, driver: str = "docker") -> ProcJob:
    """The job for `proc`: its spec, its overrides and the variables LAIN injects."""
    spec = proc.spec
    env = [tuple(item.split("=", 1)) if "=" in item else (item, "") for item in spec.env]
    env += [
        ("LAIN_APPNAME", proc.app),
        ("LAIN_APP_RELEASE_VERSION", proc.meta_version),
        ("LAIN_PROCNAME", proc.name),
        ("LAIN_DOMAIN", domain),
    ]
    return ProcJob(
        app=proc.app,
        proc=proc.name,
        proc_type=str(proc.type),
        meta_version=proc.meta_version,
        image=proc.image,
        num_instances=proc.num_instances,
        cpu=proc.cpu,
        memory_bytes=proc.memory_bytes,
        cmd=spec.cmd,
        entrypoint=spec.entrypoint,
        env=tuple((key, value) for key, value in env),
        port=spec.port.number if spec.port is not None else None,
        port_protocol=str(spec.port.protocol) if spec.port is not None else "tcp",
        healthcheck=spec.healthcheck,
        working_dir=spec.working_dir,
        user=spec.user,
        setup_time=spec.setup_time,
        kill_timeout=spec.kill_timeout,
        driver=driver,
    )
