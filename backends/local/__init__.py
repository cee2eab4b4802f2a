"""The local backend: procs run as supervised processes on this machine."""

from __future__ import annotations

from backends.local.logs import LogRetention
from backends.local.scheduler import LocalScheduler

__all__ = ["LocalScheduler", "LogRetention"]
