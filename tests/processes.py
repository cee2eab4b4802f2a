"""Finding and killing what a test left running: every process working inside a directory.

The local backend starts each instance in `<data dir>/apps/<app>/`, whatever started the
console and whatever the app's environment, so a test that owns a data dir can end every
process of its apps by looking at each process's working directory.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

__all__ = ["kill_processes_in", "processes_in"]


def processes_in(directory: Path) -> list[int]:
    """Pids of the live processes whose working directory is `directory` or below it."""
    root = os.path.realpath(directory)
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")  # unreadable for zombies and vanished pids
        except OSError:
            continue
        if cwd == root or cwd.startswith(root + os.sep):
            found.append(int(entry.name))
    return found


def kill_processes_in(directory: Path) -> list[int]:
    """SIGKILL the process group of each process working in `directory`; returns the pids."""
    pids = processes_in(directory)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # a process that left the group of its own
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)  # a child of this test process: collect it
    return pids
