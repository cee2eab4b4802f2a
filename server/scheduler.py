"""The scheduler the settings ask for."""

from __future__ import annotations

import os
from collections.abc import Mapping

from backends.base import Scheduler
from server.settings import Settings

__all__ = ["make_scheduler"]


def make_scheduler(settings: Settings, environ: Mapping[str, str] = os.environ) -> Scheduler:
    """An unopened scheduler; the lifespan enters it. Raises ValueError on bad Nomad settings."""
    if settings.backend == "nomad":
        from backends.nomad import NomadScheduler, NomadSettings

        return NomadScheduler(NomadSettings.from_environ(environ))
    from backends.local import LocalScheduler

    return LocalScheduler(
        data_dir=settings.data_dir,
        stop_on_exit=settings.local_stop_on_exit,
        min_healthy_time=settings.min_healthy_time,
        rollout_timeout=settings.rollout_timeout,
    )
