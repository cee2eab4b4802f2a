"""Helpers for the Nomad backend tests: jobs to deploy, waiting on conditions with a
deadline (never sleep-and-hope), and an event collector."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from backends.nomad import NomadScheduler, NomadSettings
from backends.types import EventKind, InstanceStatus, ProcJob, SchedulerEvent
from tests.fakes.nomad import FakeNomad

MIB = 1024 * 1024
# Short enough to keep fault tests fast, long enough for a loaded CI machine.
REQUEST_TIMEOUT = 1.0
HEARTBEAT_TIMEOUT = 1.0


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]],
    *,
    within: float = 5.0,
    message: str = "condition",
) -> None:
    """Poll `condition` until it holds; fail the test after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {message}")
        await asyncio.sleep(0.01)


def make_job(
    *,
    app: str = "hello",
    proc: str = "web",
    proc_type: str = "web",
    num_instances: int = 2,
    image: str = "registry.lain.local/hello:release-1",
    **changes: object,
) -> ProcJob:
    values: dict[str, object] = {
        "app": app,
        "proc": proc,
        "proc_type": proc_type,
        "meta_version": "1528874349-6f8a0e5c2d9b4a1f3e7c8d9a0b1c2d3e4f5a6b7c",
        "image": image,
        "num_instances": num_instances,
        "cpu": 1,
        "memory_bytes": 64 * MIB,
        "cmd": ("./run", "--port", "8080"),
        "env": (("LAIN_APPNAME", app), ("TZ", "Asia/Shanghai")),
    }
    if proc_type == "web":
        values.update(port=8080, healthcheck="/health")
    values.update(changes)
    return ProcJob(**values)  # type: ignore[arg-type]


class EventLog:
    """Collects a scheduler's events from cursor 0 in a background task."""

    def __init__(self, scheduler: NomadScheduler) -> None:
        self.events: list[SchedulerEvent] = []
        self._task = asyncio.create_task(self._collect(scheduler))

    async def _collect(self, scheduler: NomadScheduler) -> None:
        async for event in scheduler.events(0):
            self.events.append(event)

    async def wait_for(
        self,
        predicate: Callable[[SchedulerEvent], bool],
        *,
        after: int = 0,
        within: float = 5.0,
        message: str = "an event",
    ) -> SchedulerEvent:
        """The first event past cursor `after` that matches."""
        found: list[SchedulerEvent] = []

        def match() -> bool:
            found[:] = [e for e in self.events if e.cursor > after and predicate(e)]
            return bool(found)

        await wait_until(match, within=within, message=message)
        return found[0]

    @property
    def last_cursor(self) -> int:
        return self.events[-1].cursor if self.events else 0

    def instances(self, job_id: str, number: int) -> list[SchedulerEvent]:
        return [
            e
            for e in self.events
            if e.kind is EventKind.INSTANCE
            and e.job_id == job_id
            and e.instance is not None
            and e.instance.number == number
        ]

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def instance_is(
    job_id: str, number: int, status: InstanceStatus
) -> Callable[[SchedulerEvent], bool]:
    def check(event: SchedulerEvent) -> bool:
        return (
            event.kind is EventKind.INSTANCE
            and event.job_id == job_id
            and event.instance is not None
            and event.instance.number == number
            and event.instance.status is status
        )

    return check


@contextlib.asynccontextmanager
async def reading_nomad(
    settings: NomadSettings, **options: object
) -> AsyncIterator[NomadScheduler]:
    """A scheduler whose event stream is not started: every read asks Nomad, so a test
    that steps the fake by hand reads exactly what it stepped to (an opened one answers
    from its event stream, which follows a moment later)."""
    scheduler = open_scheduler(settings, **options)
    try:
        yield scheduler
    finally:
        await scheduler.__aexit__(None, None, None)


async def in_step(scheduler: NomadScheduler, fake: FakeNomad, *, within: float = 5.0) -> None:
    """Until the scheduler's event stream has applied every event the fake has emitted."""
    stream = scheduler.event_stream
    assert stream is not None
    with fake.lock:
        last = fake.frames[-1]["Index"] if fake.frames else 0
    await wait_until(
        lambda: stream.connected and (stream.last_index or 0) >= last,
        within=within,
        message=f"the event stream to reach index {last}",
    )


def open_scheduler(settings: NomadSettings, **options: object) -> NomadScheduler:
    defaults: dict[str, object] = {
        "timeout": REQUEST_TIMEOUT,
        "heartbeat_timeout": HEARTBEAT_TIMEOUT,
        "reconnect_backoff": (0.02, 0.2),
    }
    defaults.update(options)
    return NomadScheduler(settings, **defaults)  # type: ignore[arg-type]
