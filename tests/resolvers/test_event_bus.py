"""The event bus on the durable log: a subscriber far behind reads the log, then the live
window, exactly once and in order; the writer applies the retention."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
from sqlalchemy import Engine, event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backends.types import (
    EventKind,
    InstanceState,
    InstanceStatus,
    ProcState,
    RolloutStatus,
    SchedulerEvent,
)
from resolvers.core import events
from resolvers.core.errors import CursorExpired
from resolvers.core.events import AppEvent, EventBus, EventRetention, EventSnapshot, decode_snapshot
from resolvers.readmodel.views import AppStatus, AppType, AppView
from store import eventlog


def _view(name: str, error: str = "") -> AppView:
    now = datetime.now(UTC)
    return AppView(
        name=name,
        apptype=AppType.APP,
        meta_version=None,
        status=AppStatus.UNDEPLOYED,
        last_error=error,
        created_at=now,
        updated_at=now,
        giturl="",
    )


def _exited(job_id: str) -> InstanceState:
    return InstanceState(job_id=job_id, number=1, status=InstanceStatus.EXITED)


async def _as_published(events: Sequence[AppEvent]) -> list[EventSnapshot]:
    return [EventSnapshot(app=event.app_view, proc=None) for event in events]


@contextlib.asynccontextmanager
async def _running(bus: EventBus) -> AsyncIterator[None]:
    await bus.start()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(bus.run, _as_published)
        yield
        await bus.stop()
        tasks.cancel_scope.cancel()


@pytest.fixture
async def newest(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return (await eventlog.event_bounds(session)).newest or 0


async def test_a_subscriber_behind_the_window_reads_the_log_then_live_events(
    sessions: async_sessionmaker[AsyncSession], newest: int
) -> None:
    bus = EventBus(sessions, history=8)  # far fewer than what the subscriber missed
    async with _running(bus):
        for n in range(60):
            bus.publish_app(_view("hello" if n % 2 else "other", error=str(n)))
        await bus.drain()
        received: list[AppEvent] = []

        async def read() -> None:
            async for event in bus.subscribe(app="hello", after=newest):
                received.append(event)
                if len(received) == 31:
                    return

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(read)
                await bus.drain()
                bus.publish_app(_view("hello", error="live"))
        snapshots = [decode_snapshot(event) for event in received]
        errors = [s.app.last_error for s in snapshots if s is not None and s.app is not None]
        assert errors == [*(str(n) for n in range(1, 60, 2)), "live"]
        cursors = [e.cursor for e in received]
        assert cursors == sorted(set(cursors))
        assert cursors[0] > newest


async def test_the_writer_keeps_the_newest_events_of_the_retention(
    sessions: async_sessionmaker[AsyncSession], newest: int
) -> None:
    bus = EventBus(sessions, retention=EventRetention(count=100, seconds=3600, every=0))
    async with _running(bus):
        for n in range(150):
            bus.publish_app(_view("hello", error=str(n)))
            if n % 10 == 0:
                await asyncio.sleep(0)  # several batches, each followed by a prune
        await bus.drain()
        bus.publish_app(_view("hello", error="last"))  # the prune after this batch sees all
        await bus.drain()
    async with sessions() as session:
        bounds = await eventlog.event_bounds(session)
    assert bounds.newest is not None
    assert bounds.oldest is not None
    assert bounds.newest - bounds.oldest + 1 == 100
    with pytest.raises(CursorExpired):
        await bus.check_cursor(newest)


async def test_live_subscribers_get_this_consoles_events_without_reading_them_back(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tail reads the log when woken, and every poll interval: make that never, here.
    monkeypatch.setattr(events, "_POLL_SECONDS", 3600.0)
    bus = EventBus(sessions)
    reads: list[str] = []
    looked = asyncio.Event()

    def record(*args: Any) -> None:
        # What the tail (or a subscriber behind) runs to read events; not the pruning.
        if "FROM event_log" in args[2] and "ORDER BY event_log.id" in args[2]:
            reads.append(args[2])
            looked.set()

    event.listen(Engine, "before_cursor_execute", record)
    try:
        async with _running(bus):
            with anyio.fail_after(20):
                await looked.wait()  # the tail's first look at the log, as the bus starts
                live = aiter(bus.subscribe(app="hello", after=bus.cursor))
                first = asyncio.ensure_future(anext(live))
                await asyncio.sleep(0)  # the subscriber waits for what comes next
                reads.clear()
                bus.publish_app(_view("hello", error="fresh"))
                delivered = await first
                await live.aclose()
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    snapshot = decode_snapshot(delivered)
    assert snapshot is not None
    assert snapshot.app is not None
    assert snapshot.app.last_error == "fresh"
    assert reads == [], reads  # the writer handed it over; nobody read the log for it


async def test_subscribing_from_now_asks_the_database_nothing(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A thousand browsers reconnecting at once must not queue for database connections.
    monkeypatch.setattr(events, "_POLL_SECONDS", 3600.0)
    bus = EventBus(sessions, retention=EventRetention(every=1e12))  # no pruning meanwhile
    statements: list[str] = []
    looked = asyncio.Event()

    def record(*args: Any) -> None:
        if "event_log" in args[2]:
            statements.append(args[2])
            if "ORDER BY event_log.id" in args[2]:
                looked.set()

    event.listen(Engine, "before_cursor_execute", record)
    try:
        async with _running(bus):
            with anyio.fail_after(20):
                await looked.wait()  # the tail's first look at the log, as the bus starts
                bus.publish_app(_view("hello", error="before"))
                await bus.drain()
                statements.clear()
                live = aiter(bus.subscribe(app="hello"))
                first = asyncio.ensure_future(anext(live))
                await asyncio.sleep(0.1)  # subscribed, waiting for what comes next
                assert statements == [], statements
                bus.publish_app(_view("hello", error="after"))
                delivered = await first
                await live.aclose()
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    snapshot = decode_snapshot(delivered)
    assert snapshot is not None
    assert snapshot.app is not None
    assert snapshot.app.last_error == "after"  # from now: not the event before it


async def test_a_removed_proc_reads_missing_at_once_not_as_the_log_last_said(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Between the scheduler's removal and its persisting, the bus said what the log said
    before (a rollout running), so a read right after an undeploy could show a ghost."""
    bus = EventBus(sessions)
    job = "hello.web.web"
    rolling = ProcState(job_id=job, exists=True, num_instances=1, rollout=RolloutStatus.RUNNING)
    async with _running(bus):
        bus.publish_scheduler_event(SchedulerEvent(1, EventKind.PROC, job, proc=rolling))
        await bus.drain()  # the log now says: rolling
        bus.publish_scheduler_event(SchedulerEvent(2, EventKind.PROC_REMOVED, job))

        state = bus.proc_state(job)  # before the writer persisted the removal

        assert state is not None
        assert state.exists is False
        bus.publish_scheduler_event(
            SchedulerEvent(3, EventKind.INSTANCE, job, instance=_exited(job))
        )
        late = bus.proc_state(job)  # a late instance event does not bring it back
        assert late is not None
        assert late.exists is False
