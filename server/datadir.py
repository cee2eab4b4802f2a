"""One console per data dir: an exclusive OS lock on `<data dir>/console.lock`.

Two consoles on one data dir would both adopt the local backend's processes and both
respawn them. `flock` locks belong to the open file, so the kernel releases this one when
the console exits in any way, crash and SIGKILL included; the descriptor is close-on-exec,
so the app processes the console starts (which outlive it) never hold it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["LOCK_FILE", "DataDirInUse", "hold_data_dir"]

LOCK_FILE = "console.lock"


class DataDirInUse(Exception):
    """Another console holds the data dir; the message names the dir and that console's pid."""


@contextlib.contextmanager
def hold_data_dir(data_dir: Path) -> Iterator[None]:
    """Hold the data dir's lock for the duration of the block. Raises DataDirInUse."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # the console's alone
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataDirInUse(
                f"data dir {data_dir} is in use by another lain-console "
                f"(pid {_holder(fd)}); stop that one first, or set LAIN_CONSOLE_DATA_DIR "
                "to another directory"
            ) from None
        # The pid is for the message above, in the next console that tries; only the lock counts.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    # Empty for the instant between the other console's lock and its write.
    return text if text.isdigit() else "unknown"
