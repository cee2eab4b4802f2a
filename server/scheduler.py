"""The scheduler the settings ask for."""

from __future__ import annotations

import os
from collections.abc import Mapping

from backends.base import Scheduler
from backends.logs import LogArchive
from server.settings import Settings

__all__ = ["make_scheduler"]


def make_scheduler(
    settings: Settings,
    environ: Mapping[str, str] = os.environ,
    *,
    log_archive: LogArchive | None = None,
) -> Scheduler:
    """An unopened scheduler; the lifespan enters it. Raises ValueError on bad Nomad settings.

    `log_archive` keeps the output of Nomad allocations that end (the local backend keeps
    its own files).
    """
    if settings.backend == "nomad":
        from backends.nomad import NomadScheduler, NomadSettings

        return NomadScheduler(
            NomadSettings.from_environ(environ),
            log_archive=log_archive,
            log_follow_buffer=settings.log_follow_buffer_lines,
        )
    from backends.local import LocalScheduler, LogRetention

    retention = LogRetention(
        max_age_seconds=settings.instance_log_retention_days * 86400,
        max_total_bytes=settings.instance_log_retention_bytes,
    )
    return LocalScheduler(
        data_dir=settings.data_dir,
        stop_on_exit=settings.local_stop_on_exit,
        log_max_bytes=settings.instance_log_max_bytes,
        log_files=settings.instance_log_files,
        log_retention=retention,
        log_follow_buffer=settings.log_follow_buffer_lines,
    )
