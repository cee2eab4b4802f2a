"""The event bus: scheduler state changes and app changes, with cursors, for subscriptions."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from backends.errors import SchedulerError
from backends.feed import CursorLog
from backends.types import EventKind, InstanceState, ProcState, SchedulerEvent, split_job_id
from resolvers.changes import InstanceHistory

if TYPE_CHECKING:
    from backends.base import Scheduler
    from resolvers.views import AppView

__all__ = ["AppEvent", "AppEventKind", "EventBus"]

log = logging.getLogger(__name__)


class AppEventKind(StrEnum):
    INSTANCE = "instance"  # one instance changed
    PROC = "proc"  # a proc's job was created, changed, scaled or resized
    PROC_REMOVED = "proc_removed"
    APP = "app"  # the app's desired state or deploy status changed


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


_KINDS = {
    EventKind.INSTANCE: AppEventKind.INSTANCE,
    EventKind.PROC: AppEventKind.PROC,
    EventKind.PROC_REMOVED: AppEventKind.PROC_REMOVED,
}


class EventBus:
    """Re-publishes the scheduler's events per app, keeping each proc's latest state.

    The bus has cursors of its own, so events that originate in the resolvers (an app's
    status) and in the scheduler share one order a client can resume from.
    """

    def __init__(self, *, history: int = 10_000) -> None:
        self._log: CursorLog[AppEvent] = CursorLog(history=history)
        self._states: dict[str, ProcState] = {}
        # Every instance's recent state changes, for LAIN's instance histories.
        self.changes = InstanceHistory()

    @property
    def cursor(self) -> int:
        return self._log.cursor

    def close(self) -> None:
        self._log.close()

    def proc_state(self, job_id: str) -> ProcState | None:
        """The proc's state as the scheduler's events last told it; None if they never did."""
        return self._states.get(job_id)

    def publish_app(self, view: AppView) -> AppEvent:
        return self._log.append(
            lambda cursor: AppEvent(cursor, AppEventKind.APP, view.name, app_view=view)
        )

    def publish_scheduler_event(self, event: SchedulerEvent) -> AppEvent:
        app, _, proc = split_job_id(event.job_id)
        state = self._track(event)
        self.changes.record(event, state)
        return self._log.append(
            lambda cursor: AppEvent(
                cursor, _KINDS[event.kind], app, proc, instance=event.instance, proc_state=state
            )
        )

    def _track(self, event: SchedulerEvent) -> ProcState | None:
        if event.kind is EventKind.PROC_REMOVED:
            self._states.pop(event.job_id, None)
            return ProcState.missing(event.job_id)
        if event.proc is not None:
            self._states[event.job_id] = event.proc
            return event.proc
        known = self._states.get(event.job_id)
        if known is None or event.instance is None:
            return known
        others = tuple(i for i in known.instances if i.number != event.instance.number)
        instances = tuple(sorted((*others, event.instance), key=lambda i: i.number))
        updated = replace(known, instances=instances)
        self._states[event.job_id] = updated
        return updated

    async def subscribe(
        self, *, app: str, proc: str | None = None, after: int | None = None
    ) -> AsyncIterator[AppEvent]:
        """Events of `app` (and of `proc`, when given) after the cursor, then live ones."""
        async for event in self._log.subscribe(after):
            if event.app != app:
                continue
            if proc is not None and event.proc != proc:
                continue
            yield event

    async def pump(self, scheduler: Scheduler, *, retry_delay: float = 1.0) -> None:
        """Copy the scheduler's events into the bus until cancelled, resuming after failures."""
        after: int | None = None
        while True:
            try:
                async for event in scheduler.events(after):
                    after = event.cursor
                    self.publish_scheduler_event(event)
                return  # the scheduler closed its feed: it is shutting down
            except SchedulerError as exc:
                log.warning("scheduler event feed failed, resuming: %s", exc)
                await asyncio.sleep(retry_delay)
