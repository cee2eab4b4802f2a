"""Who an app's processes run as, and the files they may reach.

Like Nomad's `exec` driver (and unlike `raw_exec`): when the console runs as root, every
app gets an unprivileged uid of its own, with a gid of the same number, from a configured
range. The process drops to it just before its exec (see `process`), with no
supplementary groups and `PR_SET_NO_NEW_PRIVS`, so set-uid programs cannot give root
back. Apps therefore cannot read, write or signal each other or the console.

The assignment is kept in `<data_dir>/local/uids.json`, so an app keeps its uid across
console restarts (and the files it owns stay its own); a uid already used by a user or a
group of this machine is never handed out.

The data dir is laid out so that an app uid can reach its own working directory and
nothing else:

    <data_dir>/             0711  passable, not listable
        lain-console.db     0600  (store.engine makes it so)
        local/              0700  job files, process records, logs
        apps/               0711  passable, not listable
            <app>/          0700  owned by the app's uid

A console that is not root cannot switch users; then the processes run as the console
(`AppIdentity` None), which `server/` refuses with access control on unless the operator
accepts it explicitly.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import stat
import threading
from dataclasses import replace
from pathlib import Path

from backends.local.process import AppIdentity, ProcessHandle, SpawnError, SpawnSpec, spawn

__all__ = [
    "DEFAULT_APP_UIDS",
    "PASSABLE_DIR_MODE",
    "PRIVATE_DIR_MODE",
    "AppIdentity",
    "AppSandbox",
    "UidAssignments",
    "can_switch_users",
    "prepare_working_dir",
]

# Above the ranges distributions hand out to people (1000-60000) and systemd's dynamic users
# (61184-65519), and below the 100000+ subordinate ranges container runtimes commonly use.
DEFAULT_APP_UIDS = range(70000, 80000)
PRIVATE_DIR_MODE = 0o700
PASSABLE_DIR_MODE = 0o711  # others may pass through to a directory below, not list it


def can_switch_users() -> bool:
    return os.geteuid() == 0


class AppSandbox:
    """Starts an app's processes as the app's own uid when it can, else as the console.

    Args:
        data_dir: the console's data dir; the uid assignments are kept in it.
        uids: the range per-app uids (and gids) are taken from.
    """

    def __init__(self, data_dir: Path, uids: range = DEFAULT_APP_UIDS) -> None:
        self._assignments = (
            UidAssignments(data_dir / "local" / "uids.json", uids) if can_switch_users() else None
        )

    @property
    def isolated(self) -> bool:
        return self._assignments is not None

    def blocking_parent(self, data_dir: Path) -> tuple[Path, int] | None:
        """A directory above the data dir that app uids cannot pass and its mode (blocking).

        Apps still start in their directory (it is entered before the switch), but cannot
        open anything in it by absolute path: `python app.py` imports, `http.server`.
        """
        if not self.isolated:
            return None
        for parent in reversed(data_dir.resolve().parents):
            mode = stat.S_IMODE(parent.stat().st_mode)
            if not mode & stat.S_IXOTH:
                return parent, mode
        return None

    def spawn(self, app: str, app_dir: Path, spec: SpawnSpec) -> ProcessHandle:
        """Prepare the app's working dir and start `spec` as the app (blocking).

        Raises SpawnError.
        """
        try:
            identity = self._assignments.identity(app) if self._assignments else None
            prepare_working_dir(app_dir, spec.cwd, identity)
        except (OSError, ValueError) as exc:
            raise SpawnError(f"cannot prepare {spec.cwd}: {exc}") from exc
        return spawn(replace(spec, identity=identity))


class UidAssignments:
    """Which app has which uid, read from and saved to a file (blocking; thread-safe)."""

    def __init__(self, path: Path, uids: range) -> None:
        self._path = path
        self._uids = uids
        self._lock = threading.Lock()
        self._assigned: dict[str, int] | None = None

    def identity(self, app: str) -> AppIdentity:
        """The app's identity, assigning it the lowest free uid on first use.

        Raises SpawnError when the range has no free uid left.
        """
        with self._lock:
            assigned = self._load()
            uid = assigned.get(app)
            if uid is None:
                uid = self._free_uid(set(assigned.values()))
                assigned[app] = uid
                self._save(assigned)
            return AppIdentity(uid=uid, gid=uid)

    def _load(self) -> dict[str, int]:
        if self._assigned is None:
            try:
                raw = json.loads(self._path.read_text())
            except FileNotFoundError:
                raw = {}
            self._assigned = {str(app): int(uid) for app, uid in raw.items()}
        return self._assigned

    def _free_uid(self, taken: set[int]) -> int:
        for uid in self._uids:
            if uid not in taken and not _known_to_system(uid):
                return uid
        raise SpawnError(
            f"no free uid left in {self._uids.start}-{self._uids.stop - 1} for another app "
            "(LAIN_CONSOLE_LOCAL_APP_UIDS)"
        )

    def _save(self, assigned: dict[str, int]) -> None:
        tmp = self._path.with_name(self._path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            json.dump(assigned, file, sort_keys=True)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, self._path)


def _known_to_system(uid: int) -> bool:
    with contextlib.suppress(KeyError):
        pwd.getpwuid(uid)
        return True
    with contextlib.suppress(KeyError):
        grp.getgrgid(uid)
        return True
    return False


def prepare_working_dir(app_dir: Path, cwd: Path, identity: AppIdentity | None) -> None:
    """Create the app's directory (private to its uid) and `cwd` inside it (blocking).

    Files left by an earlier owner (an older console that ran apps as itself) are handed
    to the app's uid, so that the app can still use them.
    """
    app_dir.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    if identity is not None:
        info = app_dir.lstat()
        if (info.st_uid, info.st_gid) != (identity.uid, identity.gid):
            _chown_tree(app_dir, identity)
        if stat.S_IMODE(info.st_mode) != PRIVATE_DIR_MODE:
            os.chmod(app_dir, PRIVATE_DIR_MODE)
    # Step by step: the app owns these directories and may have put a symbolic link where
    # its working_dir goes; root must not follow it to create or chown elsewhere.
    path = app_dir
    for part in cwd.relative_to(app_dir).parts:
        path = path / part
        if path.is_symlink():
            raise SpawnError(f"working_dir {path} is a symbolic link")
        if not path.is_dir():
            path.mkdir(mode=PRIVATE_DIR_MODE)
            if identity is not None:
                os.chown(path, identity.uid, identity.gid, follow_symlinks=False)


def _chown_tree(root: Path, identity: AppIdentity) -> None:
    os.chown(root, identity.uid, identity.gid, follow_symlinks=False)
    for directory, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            os.chown(
                os.path.join(directory, name), identity.uid, identity.gid, follow_symlinks=False
            )
