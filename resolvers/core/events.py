"""The event bus: scheduler state changes and app changes, with cursors, for subscriptions.

With a database (`EventBus(sessions)`, what the server runs) every event is appended to the
durable event log, whose ids are the cursors: they survive restarts and mean the same on
every replica. Publishing only queues the event; a writer task persists the queue in
batches (with the app and proc snapshots the event shows), and a tail task reads the log
back (woken in-process after a write and by PostgreSQL NOTIFY for other replicas' writes,
polling as a fallback) into a window of recent events that live subscribers share.
A subscriber resuming from before that window reads the log itself until it catches up.

Without a database (one-process tools, unit tests) events live in that window only.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

import anyio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backends.errors import SchedulerError
from backends.types import EventKind, InstanceState, ProcState, SchedulerEvent, split_job_id
from resolvers.core.errors import CursorExpired, InvalidInput
from resolvers.core.eventcodec import decode, encode
from resolvers.core.instance_changes import InstanceHistory
from resolvers.readmodel.views import AppView, ProcView
from store import eventlog
from store.models import EventRecord, utcnow

if TYPE_CHECKING:
    from backends.base import Scheduler

__all__ = [
    "AppEvent",
    "AppEventKind",
    "BusObserver",
    "EventBus",
    "EventRetention",
    "EventSnapshot",
    "Snapshotter",
    "decode_snapshot",
]

log = logging.getLogger(__name__)


class AppEventKind(StrEnum):
    INSTANCE = "instance"  # one instance changed
    PROC = "proc"  # a proc's job was created, changed, scaled or resized
    PROC_REMOVED = "proc_removed"
    APP = "app"  # the app's desired state or deploy status changed


@dataclass(frozen=True, slots=True)
class EventSnapshot:
    """The app and the proc as they were when the event happened."""

    app: AppView | None
    proc: ProcView | None


@dataclass(frozen=True, slots=True)
class AppEvent:
    cursor: int
    kind: AppEventKind
    app: str
    proc: str | None = None
    instance: InstanceState | None = None
    # The proc's whole running state after this change (instances included).
    proc_state: ProcState | None = None
    app_view: AppView | None = None
    # The snapshots taken when the event was persisted, as stored (decoded on demand, once
    # per event for all subscribers: see `resolvers.watch`); None without a database.
    stored_snapshot: Mapping[str, Any] | None = None
    job_id: str | None = None  # the scheduler job, for scheduler events
    # When the event was published (wall-clock seconds, so that every replica can tell how
    # late it delivers it): set on publishing, kept in the log's payload.
    published_at: float | None = field(default=None, compare=False)


class BusObserver(Protocol):
    """Told what passes through the bus (the server's metrics); every call must be cheap."""

    def proc_changed(self, before: ProcState | None, after: ProcState | None) -> None: ...

    def subscribed(self, delta: int) -> None: ...

    def delivered(self, event: AppEvent) -> None: ...


# Takes the snapshots of a batch of events, one per event, in order.
Snapshotter = Callable[[Sequence[AppEvent]], Awaitable[list[EventSnapshot]]]


@dataclass(frozen=True, slots=True)
class EventRetention:
    """How much of the log is kept: at most `count` events, none older than `seconds`."""

    count: int = 100_000
    seconds: int = 7 * 24 * 3600
    every: float = 60.0  # seconds between prunes


_KINDS = {
    EventKind.INSTANCE: AppEventKind.INSTANCE,
    EventKind.PROC: AppEventKind.PROC,
    EventKind.PROC_REMOVED: AppEventKind.PROC_REMOVED,
}
_SCHEDULER_KINDS = {kind: scheduler for scheduler, kind in _KINDS.items()}

_BATCH = 500  # events per INSERT, and per page a resuming subscriber reads
_POLL_SECONDS = 2.0  # the tail reads the log at least this often: a lost NOTIFY only delays
_RETRY_SECONDS = 1.0
_DRAIN_SECONDS = 10.0


class _Window:
    """The most recent events in cursor order, shared by every live subscriber.

    It holds every event with a cursor after `covered_from`, up to `newest`; older ones
    are in the log only.
    """

    def __init__(self, *, capacity: int, start: int = 0) -> None:
        self._capacity = capacity
        self._events: list[AppEvent] = []
        self.covered_from = start
        self.newest = start
        self.closed = False
        self._published = asyncio.Event()

    def reset(self, start: int) -> None:
        self._events.clear()
        self.covered_from = self.newest = start

    def add(self, events: Sequence[AppEvent]) -> None:
        if not events:
            return
        self._events.extend(events)
        self.newest = events[-1].cursor
        # Trim in chunks, not per event: deleting from a list's head copies it.
        if len(self._events) > self._capacity + self._capacity // 4:
            drop = len(self._events) - self._capacity
            self.covered_from = self._events[drop - 1].cursor
            del self._events[:drop]
        self._wake()

    def after(self, cursor: int) -> list[AppEvent]:
        start = bisect.bisect_right(self._events, cursor, key=lambda event: event.cursor)
        return self._events[start:]

    async def wait_beyond(self, cursor: int) -> None:
        while self.newest <= cursor and not self.closed:
            await self._published.wait()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        # Waiters hold the current Event; setting it and starting a new one wakes exactly
        # those, without a lock or a task per event.
        published, self._published = self._published, asyncio.Event()
        published.set()


class EventBus:
    """Re-publishes the scheduler's events per app, keeping each proc's latest state.

    Events that originate in the resolvers (an app's status) and in the scheduler share one
    order a client can resume from.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession] | None = None,
        *,
        retention: EventRetention | None = None,
        history: int = 10_000,
        observer: BusObserver | None = None,
    ) -> None:
        self._sessions = sessions
        self._observer = observer
        self._retention = retention or EventRetention()
        self._window = _Window(capacity=history)
        self._states: dict[str, ProcState] = {}  # tracked while pumping the scheduler
        self._known: dict[str, ProcState] = {}  # as the event log tells them
        self._pending: list[AppEvent] = []
        self._queued = asyncio.Event()
        # Counts of events queued and persisted so far, to wait for "everything until now".
        self._queued_total = 0
        self._persisted_total = 0
        self._progress = asyncio.Event()
        self._written = asyncio.Event()  # wakes the tail: set by our writer or by NOTIFY
        self._last_prune = 0.0
        self._started = False  # the window starts at the log's newest event
        self._stopping = False
        self._stopped = asyncio.Event()
        # The cursor of the last scheduler event the pump published here (0: none yet).
        self.pumped = 0
        # Every instance's recent state changes, for LAIN's instance histories.
        self.changes = InstanceHistory()

    @property
    def durable(self) -> bool:
        return self._sessions is not None

    @property
    def cursor(self) -> int:
        """The newest cursor this console has seen."""
        return self._window.newest

    def close(self) -> None:
        self._window.close()

    def proc_state(self, job_id: str) -> ProcState | None:
        """The proc's state as the scheduler's events last told it; None if they never did.

        The leading console's own tracking while it pumps the scheduler's events, else what
        the event log said (the same on every replica, a moment later).
        """
        return self._states.get(job_id) or self._known.get(job_id)

    # -- publishing --------------------------------------------------------------------

    def publish_app(self, view: AppView) -> None:
        self._publish(AppEvent(0, AppEventKind.APP, view.name, app_view=view))

    def publish_scheduler_event(self, event: SchedulerEvent) -> None:
        app, _, proc = split_job_id(event.job_id)
        before = self.proc_state(event.job_id)
        state = self._track(event)
        if self._observer is not None:
            self._observer.proc_changed(before, state)
        self._publish(
            AppEvent(
                0,
                _KINDS[event.kind],
                app,
                proc,
                instance=event.instance,
                proc_state=state,
                job_id=event.job_id,
            )
        )

    def _publish(self, event: AppEvent) -> None:
        event = replace(event, published_at=time.time())
        if self._sessions is None:
            numbered = replace(event, cursor=self._window.newest + 1)
            self._record_change(numbered)
            self._window.add([numbered])
            return
        self._pending.append(event)
        self._queued_total += 1
        self._queued.set()

    def _track(self, event: SchedulerEvent) -> ProcState | None:
        if event.kind is EventKind.PROC_REMOVED:
            # Kept as missing, not dropped: until the writer has persisted the removal, the
            # log's last word on this job is older (a rollout running, say).
            missing = ProcState.missing(event.job_id)
            self._states[event.job_id] = missing
            return missing
        if event.proc is not None:
            self._states[event.job_id] = event.proc
            return event.proc
        known = self._states.get(event.job_id)
        if known is None or not known.exists or event.instance is None:
            return known
        others = tuple(i for i in known.instances if i.number != event.instance.number)
        instances = tuple(sorted((*others, event.instance), key=lambda i: i.number))
        updated = replace(known, instances=instances)
        self._states[event.job_id] = updated
        return updated

    def _record_change(self, event: AppEvent) -> None:
        kind = _SCHEDULER_KINDS.get(event.kind)
        if kind is None or event.job_id is None:
            return
        if kind is EventKind.PROC_REMOVED:
            self._known.pop(event.job_id, None)
        elif event.proc_state is not None:
            self._known[event.job_id] = event.proc_state
        proc = event.proc_state if kind is EventKind.PROC else None
        self.changes.record(
            SchedulerEvent(event.cursor, kind, event.job_id, instance=event.instance, proc=proc),
            event.proc_state,
        )

    # -- the durable log -----------------------------------------------------------------

    async def start(self) -> None:
        """Begin after the newest event in the log: live subscribers get what comes next.

        With the database away the console still starts (and says so in /healthz); the
        tail begins once it can read the log.
        """
        if self._sessions is None:
            return
        try:
            async with self._sessions() as session:
                bounds = await eventlog.event_bounds(session)
        except Exception as exc:  # any failure: the database is unreachable for now
            log.warning("cannot read the event log yet: %s", exc)
            return
        self._window.reset(bounds.newest or 0)
        self._started = True

    async def run(self, snapshots: Snapshotter) -> None:
        """Persist published events and follow the log, until cancelled."""
        if self._sessions is None:
            return
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._write_forever, snapshots)
                tasks.start_soon(self._tail_forever)
        finally:
            self._stopped.set()

    async def stop(self) -> None:
        """Persist what is queued, then end `run` (at shutdown). Cancelling it instead could
        interrupt a write half-way; this waits for the writer, for a while."""
        self._stopping = True
        self._queued.set()
        self._written.set()
        if self._sessions is None:
            return
        with anyio.move_on_after(_DRAIN_SECONDS):
            await self._stopped.wait()
        if self._pending:
            log.error("shutting down with %d events not persisted", len(self._pending))

    def wake(self) -> None:
        """Another console wrote events (PostgreSQL NOTIFY): read the log now."""
        self._written.set()

    async def drain(self) -> None:
        """Wait until the writer has persisted everything published so far."""
        if self._sessions is not None:
            await self._persisted(self._queued_total)

    async def _persisted(self, count: int) -> None:
        """Return once the first `count` events ever queued are in the log."""
        while self._persisted_total < count:
            await self._progress.wait()

    async def position(self) -> int:
        """The cursor of "now": the newest event this console knows of once what it has
        published so far is in the log. A subscription without a cursor starts there.

        Once the tail follows the log that is the live window's newest event, with no
        query (a reconnecting crowd of subscribers must not queue for connections): an
        event another console wrote a moment ago that the tail has not read yet comes after
        it, so such a subscriber gets it rather than misses it.
        """
        if self._sessions is None:
            return self._window.newest
        await self._persisted(self._queued_total)
        if self._started:
            return self._window.newest
        async with self._sessions() as session:
            bounds = await eventlog.event_bounds(session)
        return max(bounds.newest or 0, self._window.newest)

    async def _write_forever(self, snapshots: Snapshotter) -> None:
        while True:
            await self._queued.wait()
            self._queued.clear()
            while self._pending:
                batch = self._pending[:_BATCH]
                try:
                    persisted = await self._persist(batch, snapshots)
                except Exception:  # the database away: keep the events, try again
                    log.exception("could not persist %d events; retrying", len(batch))
                    await asyncio.sleep(_RETRY_SECONDS)
                    continue
                del self._pending[: len(batch)]
                self._persisted_total += len(batch)
                if not self._follow(persisted):
                    self._written.set()
                progress, self._progress = self._progress, asyncio.Event()
                progress.set()
            if self._stopping:
                return
            await self._prune_now_and_then()

    async def _persist(self, batch: Sequence[AppEvent], snapshots: Snapshotter) -> list[AppEvent]:
        """Append the batch to the log; the events as the log now holds them."""
        assert self._sessions is not None
        taken = await snapshots(batch)
        now = utcnow()
        # Events of one proc in a batch share their views: encode each pair once.
        encoded: dict[tuple[int, int], Any] = {}
        rows = []
        stored = []
        for event, snapshot in zip(batch, taken, strict=True):
            key = (id(snapshot.app), id(snapshot.proc))
            if key not in encoded:
                encoded[key] = encode(snapshot)
            rows.append(
                eventlog.NewEvent(
                    kind=event.kind.value,
                    app=event.app,
                    proc=event.proc,
                    payload=_payload(event, encoded[key]),
                    at=now,
                )
            )
            stored.append(encoded[key])
        async with self._sessions.begin() as session:
            ids = await eventlog.append_events(session, rows)
        # What the tail would read back: the log's id, the stored snapshot (no live view).
        return [
            replace(event, cursor=cursor, stored_snapshot=snapshot, app_view=None)
            for event, cursor, snapshot in zip(batch, ids, stored, strict=True)
        ]

    def _follow(self, persisted: Sequence[AppEvent]) -> bool:
        """Give live subscribers what this console just wrote without reading it back, when
        it follows on from what they have; False otherwise (another console wrote in
        between, or the tail is behind): then the tail must read the log, in order."""
        if not self._started or not persisted or persisted[0].cursor != self._window.newest + 1:
            return False
        for event in persisted:
            self._record_change(event)
        self._window.add(persisted)
        return True

    async def _prune_now_and_then(self) -> None:
        assert self._sessions is not None
        if time.monotonic() - self._last_prune < self._retention.every:
            return
        self._last_prune = time.monotonic()
        try:
            async with self._sessions.begin() as session:
                pruned = await eventlog.prune_events(
                    session, keep=self._retention.count, max_age_seconds=self._retention.seconds
                )
        except Exception:
            log.exception("pruning the event log failed")
            return
        if pruned:
            log.info("pruned %d events from the event log", pruned)

    async def _tail_forever(self) -> None:
        assert self._sessions is not None
        while not self._stopping:
            self._written.clear()
            if not self._started:
                await self.start()
                if not self._started:
                    await asyncio.sleep(_RETRY_SECONDS)
                    continue
            try:
                async with self._sessions() as session:
                    rows = await eventlog.events_after(session, self._window.newest, limit=_BATCH)
            except Exception:
                log.exception("reading the event log failed; retrying")
                await asyncio.sleep(_RETRY_SECONDS)
                continue
            # Skip what the writer already gave the window (it may commit while we read).
            events = [_event_of(row) for row in rows if row.id > self._window.newest]
            for event in events:
                self._record_change(event)
            self._window.add(events)
            if len(rows) == _BATCH:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._written.wait(), _POLL_SECONDS)

    # -- subscribing ---------------------------------------------------------------------

    async def check_cursor(self, after: int | None) -> None:
        """Raises InvalidInput for a cursor no event had, CursorExpired for a pruned one."""
        if after is None:
            return
        oldest, newest = self._window.covered_from + 1, self._window.newest
        if self._sessions is not None:
            async with self._sessions() as session:
                bounds = await eventlog.event_bounds(session)
            oldest = bounds.oldest if bounds.oldest is not None else newest + 1
            newest = max(newest, bounds.newest or 0)
        if after > newest:
            raise InvalidInput(
                f"after: cursor {after} is newer than the newest event ({newest})", field="after"
            )
        if after < oldest - 1:
            raise CursorExpired(after, oldest - 1)

    async def subscribe(
        self, *, app: str, proc: str | None = None, after: int | None = None
    ) -> AsyncIterator[AppEvent]:
        """Events of `app` (and of `proc`, when given) after the cursor, then live ones.

        Raises CursorExpired when the events after the cursor were pruned meanwhile.
        """
        last = await self.position() if after is None else after
        live_from = last  # replays of older events say nothing about lag
        observer = self._observer
        if observer is not None:
            observer.subscribed(1)
        try:
            while True:
                if last < self._window.covered_from:
                    older, last = await self._read_back(last, app, proc)
                    for event in older:
                        yield event
                    continue
                recent = self._window.after(last)
                for event in recent:
                    last = event.cursor
                    if event.app == app and (proc is None or event.proc == proc):
                        if observer is not None and last > live_from:
                            observer.delivered(event)
                        yield event
                    if last < self._window.covered_from:
                        break  # we fell out of the window while the client read: go to the log
                if self._window.closed:
                    return
                if not recent:
                    await self._window.wait_beyond(last)
        finally:
            if observer is not None:
                observer.subscribed(-1)

    async def _read_back(
        self, after: int, app: str, proc: str | None
    ) -> tuple[list[AppEvent], int]:
        """The next page of the app's events from the log, and the cursor it reaches."""
        if self._sessions is None:
            raise CursorExpired(after, self._window.covered_from)
        upto = self._window.covered_from
        async with self._sessions() as session:
            rows = await eventlog.events_after(
                session, after, upto=upto, app=app, proc=proc, limit=_BATCH
            )
            # Read after the rows: a prune that came first shows here.
            bounds = await eventlog.event_bounds(session)
        if (
            bounds.oldest is not None
            and bounds.oldest - 1 > after
            and (not rows or rows[0].id > bounds.oldest)
        ):
            raise CursorExpired(after, bounds.oldest - 1)
        reached = rows[-1].id if len(rows) == _BATCH else upto
        return [_event_of(row) for row in rows], reached

    # -- the scheduler -------------------------------------------------------------------

    async def pump(self, scheduler: Scheduler, *, retry_delay: float = 1.0) -> None:
        """Copy the scheduler's events into the bus until cancelled, resuming after failures."""
        after: int | None = None
        try:
            while True:
                try:
                    async for event in scheduler.events(after):
                        after = event.cursor
                        self.publish_scheduler_event(event)
                        self.pumped = event.cursor
                    return  # the scheduler closed its feed: it is shutting down
                except SchedulerError as exc:
                    log.warning("scheduler event feed failed, resuming: %s", exc)
                    await asyncio.sleep(retry_delay)
        finally:
            # No longer leading: what this console tracked goes stale; the log's stays.
            self._states.clear()


def decode_snapshot(event: AppEvent) -> EventSnapshot | None:
    """The snapshots stored with a persisted event."""
    if event.stored_snapshot is None:
        return None
    return decode(EventSnapshot, event.stored_snapshot)


def _payload(event: AppEvent, snapshot: object) -> dict[str, object]:
    return {
        "job_id": event.job_id,
        "instance": encode(event.instance),
        "proc_state": encode(event.proc_state),
        "snapshot": snapshot,
        "published_at": event.published_at,
    }


def _event_of(row: EventRecord) -> AppEvent:
    payload = row.payload
    return AppEvent(
        cursor=row.id,
        kind=AppEventKind(row.kind),
        app=row.app,
        proc=row.proc,
        instance=decode(InstanceState, payload.get("instance")),
        proc_state=decode(ProcState, payload.get("proc_state")),
        stored_snapshot=payload["snapshot"],  # type: ignore[arg-type]
        job_id=payload.get("job_id"),  # type: ignore[arg-type]
        # Events written before this field existed: when they were persisted.
        published_at=payload.get("published_at") or row.at.timestamp(),  # type: ignore[arg-type]
    )
