"""One console per data dir and per SQLite database: exclusive OS locks on lock files.

Two consoles on one data dir would both adopt the local backend's processes and both
respawn them; two on one SQLite file (it may live outside the data dir) would both run the
reconciler and both write events, which SQLite's single writer cannot take. `flock` locks
belong to the open file, so the kernel releases them when the console exits in any way,
crash and SIGKILL included; the descriptors are close-on-exec, so the app processes the
console starts (which outlive it) never hold them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from store.engine import sqlite_file

__all__ = [
    "LOCK_FILE",
    "DataDirInUse",
    "hold_data_dir",
    "hold_sqlite_database",
]

LOCK_FILE = "console.lock"


class DataDirInUse(Exception):
    """Another console holds the data dir or the database; the message names it and that
    console's pid."""


@contextlib.contextmanager
def hold_data_dir(data_dir: Path) -> Iterator[None]:
    """Hold the data dir's lock for the duration of the block. Raises DataDirInUse."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # the console's alone
    advice = "set LAIN_CONSOLE_DATA_DIR to another directory"
    with _hold(data_dir / LOCK_FILE, f"data dir {data_dir}", advice):
        yield


@contextlib.contextmanager
def hold_sqlite_database(database_url: str) -> Iterator[None]:
    """Hold `<database file>-console.lock` for the duration of the block, when the database
    is a SQLite file (nothing otherwise). Raises DataDirInUse."""
    path = sqlite_file(database_url)
    if path is None:
        yield
        return
    advice = "set LAIN_CONSOLE_DATABASE_URL to another database (SQLite serves one console)"
    with _hold(Path(f"{path}-console.lock"), f"SQLite database {path}", advice):
        yield


@contextlib.contextmanager
def _hold(lock_file: Path, what: str, advice: str) -> Iterator[None]:
    try:
        fd = _open_lock_file(lock_file)
    except FileNotFoundError:
        # No such directory (a SQLite path under a missing folder): nothing can share what
        # does not exist, and SQLite names the problem when the console opens it.
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataDirInUse(
                f"{what} is in use by another lain-console (pid {_holder(fd)}); "
                f"stop that one first, or {advice}"
            ) from None
        # The pid is for the message above, in the next console that tries; only the lock counts.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def _open_lock_file(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _holder(fd: int) -> str:
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    # Empty for the instant between the other console's lock and its write.
    return text if text.isdigit() else "unknown"
