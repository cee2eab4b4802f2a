"""In-process event logs with cursors and a bounded replay history."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Generic, Protocol, TypeVar

from backends.types import EventKind, InstanceState, ProcState, SchedulerEvent

__all__ = ["CursorLog", "EventFeed"]


class _HasCursor(Protocol):
    @property
    def cursor(self) -> int: ...


E = TypeVar("E", bound=_HasCursor)


class CursorLog(Generic[E]):
    """Assigns strictly increasing cursors and fans entries out to any number of readers.

    A reader that asks for entries after a cursor first gets what the history still holds,
    then live entries. A reader that falls further behind than the history keeps is not
    blocked on: it resumes at the oldest entry still held (callers reconcile from state).
    """

    def __init__(self, *, history: int = 10_000, first_cursor: int = 0) -> None:
        # Cursors in the history are consecutive, so a cursor maps to an index directly.
        self._history: deque[E] = deque(maxlen=history)
        self._cursor = first_cursor
        self._published = asyncio.Event()
        self._closed = False

    @property
    def cursor(self) -> int:
        """The cursor of the newest entry (or the starting cursor)."""
        return self._cursor

    def append(self, make: Callable[[int], E]) -> E:
        """Build the entry for the next cursor with `make(cursor)` and publish it."""
        self._cursor += 1
        entry = make(self._cursor)
        self._history.append(entry)
        self._wake()
        return entry

    def close(self) -> None:
        """End every reader's iteration once it has drained the history."""
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        # Readers wait on the current Event; setting it and starting a new one wakes exactly
        # those that were waiting, without a lock or a task per entry.
        published, self._published = self._published, asyncio.Event()
        published.set()

    def _after(self, cursor: int) -> list[E]:
        if not self._history:
            return []
        start = max(0, cursor - self._history[0].cursor + 1)
        return [self._history[i] for i in range(start, len(self._history))]

    async def subscribe(self, after: int | None = None) -> AsyncIterator[E]:
        last = self._cursor if after is None else after
        while True:
            for entry in self._after(last):
                last = entry.cursor
                yield entry
            if self._closed:
                return
            if self._cursor <= last:
                await self._published.wait()


class EventFeed(CursorLog[SchedulerEvent]):
    """The scheduler's own feed of state changes."""

    def publish(
        self,
        kind: EventKind,
        job_id: str,
        *,
        instance: InstanceState | None = None,
        proc: ProcState | None = None,
    ) -> SchedulerEvent:
        return self.append(
            lambda cursor: SchedulerEvent(
                cursor=cursor, kind=kind, job_id=job_id, instance=instance, proc=proc
            )
        )
