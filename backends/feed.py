"""An in-process feed of scheduler events with cursors and a bounded replay history."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

from backends.types import EventKind, InstanceState, ProcState, SchedulerEvent

__all__ = ["EventFeed"]


class EventFeed:
    """Assigns strictly increasing cursors and fans events out to any number of readers.

    A reader that asks for events after a cursor first gets what the history still holds,
    then live events. A reader that falls further behind than the history keeps is not
    blocked on: it resumes at the oldest event still held (callers reconcile from state).
    """

    def __init__(self, *, history: int = 10_000, first_cursor: int = 0) -> None:
        # Cursors in the history are consecutive, so a cursor maps to an index directly.
        self._history: deque[SchedulerEvent] = deque(maxlen=history)
        self._cursor = first_cursor
        self._published = asyncio.Event()
        self._closed = False

    @property
    def cursor(self) -> int:
        """The cursor of the newest event published (or the starting cursor)."""
        return self._cursor

    def publish(
        self,
        kind: EventKind,
        job_id: str,
        *,
        instance: InstanceState | None = None,
        proc: ProcState | None = None,
    ) -> SchedulerEvent:
        self._cursor += 1
        event = SchedulerEvent(
            cursor=self._cursor, kind=kind, job_id=job_id, instance=instance, proc=proc
        )
        self._history.append(event)
        self._wake()
        return event

    def close(self) -> None:
        """End every reader's iteration once it has drained the history."""
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        # Readers wait on the current Event; setting it and starting a new one wakes exactly
        # those that were waiting, without a lock or a task per publish.
        published, self._published = self._published, asyncio.Event()
        published.set()

    def _after(self, cursor: int) -> list[SchedulerEvent]:
        if not self._history:
            return []
        start = max(0, cursor - self._history[0].cursor + 1)
        return [self._history[i] for i in range(start, len(self._history))]

    async def subscribe(self, after: int | None = None) -> AsyncIterator[SchedulerEvent]:
        last = self._cursor if after is None else after
        while True:
            for event in self._after(last):
                last = event.cursor
                yield event
            if self._closed:
                return
            if self._cursor <= last:
                await self._published.wait()
