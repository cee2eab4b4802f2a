"""The scheduler the settings ask for."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from backends.base import Scheduler
from backends.logs import LogArchive
from server.settings import Settings, SettingsError

__all__ = ["check_isolation", "make_scheduler"]

_log = logging.getLogger(__name__)

_UNISOLATED = (
    "the local backend cannot give apps users of their own because the console is not "
    "running as root, so every app would run as the console's user: any signed-in user "
    "could deploy an app that reads the console's database (every token, every app's env) "
    "and so act as a global admin. Run the console as root (each app then gets a uid of its "
    "own), use LAIN_CONSOLE_BACKEND=nomad, or, on a single-user machine where every user "
    "may be trusted with the console, accept the risk with "
    "LAIN_CONSOLE_LOCAL_ALLOW_UNISOLATED=true"
)


def check_isolation(settings: Settings, *, euid: int | None = None) -> None:
    """Refuse apps running as the console while access control is on, unless accepted.

    Raises SettingsError naming the setting that accepts the risk.
    """
    if settings.backend != "local" or (os.geteuid() if euid is None else euid) == 0:
        return
    if settings.auth and not settings.local_allow_unisolated:
        raise SettingsError(_UNISOLATED)


def make_scheduler(
    settings: Settings,
    environ: Mapping[str, str] = os.environ,
    *,
    log_archive: LogArchive | None = None,
) -> Scheduler:
    """An unopened scheduler; the lifespan enters it.

    Raises ValueError on bad Nomad settings, SettingsError (see `check_isolation`).
    `log_archive` keeps the output of Nomad allocations that end (the local backend keeps
    its own files).
    """
    check_isolation(settings)
    if settings.backend == "nomad":
        from backends.nomad import JobOptions, NomadScheduler, NomadSettings

        return NomadScheduler(
            NomadSettings.from_environ(environ),
            log_archive=log_archive,
            log_follow_buffer=settings.log_follow_buffer_lines,
            options=JobOptions.from_environ(environ),
        )
    from backends.local import LocalScheduler, LogRetention

    if os.geteuid() != 0:
        _log.warning("apps of the local backend run as the console's own user (it is not root)")
    retention = LogRetention(
        max_age_seconds=settings.instance_log_retention_days * 86400,
        max_total_bytes=settings.instance_log_retention_bytes,
    )
    return LocalScheduler(
        data_dir=settings.data_dir,
        stop_on_exit=settings.local_stop_on_exit,
        app_uids=settings.local_app_uids,
        min_healthy_time=settings.min_healthy_time,
        rollout_timeout=settings.rollout_timeout,
        health_interval=settings.local_health_interval,
        log_max_bytes=settings.instance_log_max_bytes,
        log_files=settings.instance_log_files,
        log_retention=retention,
        log_follow_buffer=settings.log_follow_buffer_lines,
    )
