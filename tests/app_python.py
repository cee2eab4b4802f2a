"""The Python interpreter test apps run under.

When the tests run as root, the local backend runs every app as an unprivileged uid of its
own, which cannot reach an interpreter under a private home (pyenv in /root, a virtualenv
in a 0700 home). Test apps need only the standard library, so they use this test run's
interpreter when any user can run it, and else a system one that any user can.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

__all__ = ["APP_PYTHON"]


def _runnable_by_anyone(path: str) -> bool:
    real = Path(path).resolve()
    if not real.is_file() or not real.stat().st_mode & stat.S_IXOTH:
        return False
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in real.parents)


def _app_python() -> str:
    candidates = [sys.executable]
    for name in (f"python{sys.version_info.major}.{sys.version_info.minor}", "python3"):
        found = shutil.which(name, path=os.pathsep.join(("/usr/local/bin", "/usr/bin", "/bin")))
        if found is not None:
            candidates.append(found)
    for candidate in candidates:
        if _runnable_by_anyone(candidate):
            return candidate
    raise RuntimeError(
        f"no Python interpreter that every user may run (tried {', '.join(candidates)}); "
        "the local backend's apps run as unprivileged uids when the tests run as root"
    )


APP_PYTHON = _app_python()
