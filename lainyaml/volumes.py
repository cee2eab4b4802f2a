"""Paths in a proc: persistent dirs (with backups), cloud volumes, secret files, logs.

Container paths are based on /lain/app, the app's root in the release image, as lain-sdk's
`lain_based_path` does: relative paths are joined to it and `..`/`.` are normalised away.
"""

from __future__ import annotations

import posixpath

from lainyaml.checks import describe, mapping, show, string, string_items, string_list
from lainyaml.errors import ProblemSink
from lainyaml.model import BackupEntry, BackupMode, CloudVolumes, CloudVolumeType

__all__ = [
    "APP_ROOT",
    "FORBIDDEN_VOLUMES",
    "LOGS_DIR",
    "lain_based_path",
    "parse_cloud_volumes",
    "parse_logs",
    "parse_persistent_dirs",
    "parse_secret_files",
]

APP_ROOT = "/lain/app"
LOGS_DIR = "/lain/logs"
# Binding a volume over these would hide the image (or the app) itself.
FORBIDDEN_VOLUMES = ("/", "/lain", APP_ROOT)

_BACKUP_KEYS = {"backup_full": BackupMode.FULL, "backup_increment": BackupMode.INCREMENT}
_BACKUP_FIELDS = ("schedule", "expire", "pre_run", "post_run")


def lain_based_path(path: str) -> str:
    """`path` as an absolute, normalised container path; relative ones are under /lain/app."""
    result = posixpath.normpath(posixpath.join(APP_ROOT, path))
    # POSIX keeps a leading "//" as implementation-defined; for a container path it is "/".
    return "/" + result.lstrip("/")


def _backups(volume: str, settings: object, path: str, sink: ProblemSink) -> list[BackupEntry]:
    if settings is None:
        return []
    checked = mapping(settings, path, sink)
    if checked is None:
        return []
    entries: list[BackupEntry] = []
    # Other keys under a volume are tolerated (the validator allows them) and ignored.
    for attr, mode in _BACKUP_KEYS.items():
        if checked.get(attr) is None:
            continue
        policy = mapping(checked[attr], f"{path}.{attr}", sink)
        if policy is None:
            continue
        values: dict[str, str] = {}
        for key, value in policy.items():
            if key not in _BACKUP_FIELDS:
                sink.add(f"{path}.{attr}.{key}", f"unknown field; expected one of {_BACKUP_FIELDS}")
            elif (text := string(value, f"{path}.{attr}.{key}", sink)) is not None:
                values[key] = text
        # As in LAIN, a policy without a schedule never runs, so it is not kept.
        if values.get("schedule"):
            entries.append(BackupEntry(volume=volume, mode=mode, **values))
    return entries


def parse_persistent_dirs(
    value: object, path: str, sink: ProblemSink
) -> tuple[tuple[str, ...], tuple[BackupEntry, ...]]:
    """Normalised dirs, always ending with /lain/logs (listed once), and their backup entries.

    Items are paths or `{<path>: {backup_full: {...}, backup_increment: {...}}}`.
    """
    if value is None:
        return (LOGS_DIR,), ()
    if not isinstance(value, list):
        sink.add(path, f"must be a list of paths, not {describe(value)}")
        return (LOGS_DIR,), ()
    dirs: dict[str, None] = {}  # an ordered set
    backups: list[BackupEntry] = []
    for i, item in enumerate(value):
        where = f"{path}[{i}]"
        if isinstance(item, dict):
            if len(item) != 1 or not isinstance(next(iter(item)), str):
                sink.add(where, "a volume with settings must be a mapping of one path")
                continue
            ((raw, settings),) = item.items()
            backups.extend(_backups(raw, settings, f"{where}.{raw}", sink))
        elif isinstance(item, str):
            raw = item
        else:
            sink.add(where, f"must be a path or a mapping of one path, not {describe(item)}")
            continue
        volume = lain_based_path(raw)
        if volume in FORBIDDEN_VOLUMES:
            sink.add(
                where, f"invalid volume: abs volume {volume} should not in {FORBIDDEN_VOLUMES}"
            )
        elif volume != LOGS_DIR:
            dirs[volume] = None
    # deployd mounts stdout/stderr logs there; a second entry would be a duplicate bind.
    return (*dirs, LOGS_DIR), tuple(backups)


def parse_cloud_volumes(value: object, path: str, sink: ProblemSink) -> CloudVolumes | None:
    """`{type: multi|single, dirs: [...]}`; None when absent or empty."""
    if value is None or value == {}:
        return None
    checked = mapping(value, path, sink)
    if checked is None:
        return None
    for key in checked:
        if key not in ("type", "dirs"):
            sink.add(f"{path}.{key}", "unknown field; expected type or dirs")
    kind = checked.get("type", CloudVolumeType.MULTI.value)
    if kind not in ("multi", "single"):
        sink.add(
            f"{path}.type",
            f"cloud volume type {show(kind)} not supported, only multi and single are valid",
        )
        return None
    raw_dirs = checked.get("dirs")
    dirs = () if raw_dirs is None else string_list(raw_dirs, f"{path}.dirs", sink, non_empty=True)
    if dirs is None:
        return None
    return CloudVolumes(CloudVolumeType(kind), tuple(lain_based_path(d) for d in dirs))


def parse_secret_files(value: object, path: str, sink: ProblemSink) -> tuple[str, ...]:
    """Absolute, normalised paths of the secret files (relative ones under /lain/app)."""
    if value is None:
        return ()
    files = string_list(value, path, sink, non_empty=True)
    if files is None:
        return ()
    return tuple(dict.fromkeys(lain_based_path(f) for f in files))


def parse_logs(value: object, path: str, sink: ProblemSink) -> tuple[str, ...]:
    """Log file names relative to /lain/logs, without duplicates, in first-seen order."""
    if value is None:
        return ()
    items = string_items(value, path, sink, non_empty=True) or []
    for where, log in items:
        if log.startswith("/"):
            sink.add(
                where,
                "Log in Logs section MUST be a relative path based on /lain/logs. "
                f"Wrong path: {log}",
            )
    return tuple(dict.fromkeys(log for _where, log in items))
