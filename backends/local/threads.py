"""The local backend's one bridge to blocking code: a bounded pool of worker threads."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread

__all__ = ["ThreadBridge"]

T = TypeVar("T")


class ThreadBridge:
    """Runs blocking callables (file system, process spawning) off the event loop.

    The limiter keeps a burst of work (say, a hundred instances starting at once) from
    taking every thread of the default pool.
    """

    def __init__(self, max_threads: int = 8) -> None:
        self._limiter = anyio.CapacityLimiter(max_threads)

    async def __call__(self, fn: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(fn, limiter=self._limiter)
