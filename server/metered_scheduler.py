"""The scheduler as the server uses it, timed: one proxy around whichever backend runs."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from backends.base import Scheduler
from backends.logs import LogItem, LogLine, LogPosition, LogStream
from backends.types import BackendHealth, InstanceAction, ProcJob, ProcState, SchedulerEvent
from server.metrics import Metrics

__all__ = ["MeteredScheduler"]


class MeteredScheduler:
    """Satisfies `Scheduler` by delegating; times each call and counts the ones that raise.

    The streams (`events`, `log_follow`) are long-lived by design and not timed. The lifespan
    wraps the scheduler it has entered, so entering the proxy is only here for the protocol.
    """

    def __init__(self, inner: Scheduler, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    @property
    def canary_deploys(self) -> bool:
        return self._inner.canary_deploys

    @contextlib.contextmanager
    def _timed(self, call: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        except BaseException as exc:
            if isinstance(exc, Exception):
                self._metrics.scheduler_errors.labels(call, type(exc).__name__).inc()
            raise
        finally:
            self._metrics.scheduler_calls.labels(call).observe(time.perf_counter() - started)

    async def apply(self, job: ProcJob) -> None:
        with self._timed("apply"):
            await self._inner.apply(job)

    async def promote(self, job_id: str) -> None:
        with self._timed("promote"):
            await self._inner.promote(job_id)

    async def scale(self, job_id: str, num_instances: int) -> None:
        with self._timed("scale"):
            await self._inner.scale(job_id, num_instances)

    async def resize(self, job_id: str, *, cpu: int, memory_bytes: int) -> None:
        with self._timed("resize"):
            await self._inner.resize(job_id, cpu=cpu, memory_bytes=memory_bytes)

    async def remove(self, job_id: str) -> None:
        with self._timed("remove"):
            await self._inner.remove(job_id)

    async def control(
        self, job_id: str, action: InstanceAction, instance: int | None = None
    ) -> None:
        with self._timed("control"):
            await self._inner.control(job_id, action, instance)

    async def state(self, job_id: str) -> ProcState:
        with self._timed("state"):
            return await self._inner.state(job_id)

    async def states(self, job_ids: Sequence[str]) -> dict[str, ProcState]:
        with self._timed("states"):
            return await self._inner.states(job_ids)

    async def health(self) -> BackendHealth:
        with self._timed("health"):
            health = await self._inner.health()
        if not health.ok:  # it never raises: "not ok" is how it fails
            self._metrics.scheduler_errors.labels("health", "unhealthy").inc()
        return health

    @property
    def state_version(self) -> int | None:
        return self._inner.state_version

    def events(self, after: int | None = None) -> AsyncIterator[SchedulerEvent]:
        return self._inner.events(after)

    async def log_tail(
        self,
        job_id: str,
        *,
        instance: int | None = None,
        lines: int = 100,
        stream: LogStream | None = None,
    ) -> list[LogLine]:
        with self._timed("log_tail"):
            return await self._inner.log_tail(job_id, instance=instance, lines=lines, stream=stream)

    def log_follow(
        self,
        job_id: str,
        *,
        instance: int | None = None,
        tail: int = 0,
        after: LogPosition | None = None,
    ) -> AsyncIterator[list[LogItem]]:
        return self._inner.log_follow(job_id, instance=instance, tail=tail, after=after)

    async def __aenter__(self) -> MeteredScheduler:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._inner.__aexit__(*exc_info)
