"""Refuses overlapping operations on one app instead of letting them race."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from resolvers.core.errors import Conflict

__all__ = ["RECONCILIATION", "OperationGuard", "SharedLocks"]

RECONCILIATION = "reconciliation"
"""The reconciler's claim. Users wait for it (briefly) instead of being refused: a round is
housekeeping, not a competing operation, and it never waits for anyone itself."""


class SharedLocks(Protocol):
    """Named locks every console on the database sees (PostgreSQL advisory locks)."""

    async def try_lock(self, name: str, *, shared: bool = False) -> bool: ...

    async def unlock(self, name: str, *, shared: bool = False) -> None: ...


class OperationGuard:
    """Claims are taken without waiting: a second caller gets Conflict at once, except that a
    user's claim waits up to `patience` seconds for the reconciler's to end (on another
    console, where who holds a lock is unknown, it retries a lock for as long).

    An app-wide operation (deploy, update, undeploy) excludes every other operation on that
    app; proc operations exclude each other only on the same proc. Claims of this console
    are checked in-process (the event loop runs one task at a time, so checking and claiming
    need no lock). With `locks`, the claim is also taken there, so that another console on
    the same database is refused too: an app operation locks the app exclusively, a proc
    operation locks the app shared and the proc exclusively.
    """

    def __init__(self, locks: SharedLocks | None = None, *, patience: float = 3.0) -> None:
        self._locks = locks
        self._patience = patience
        self._apps: dict[str, str] = {}
        self._procs: dict[tuple[str, str], str] = {}
        # Set when the reconciler lets go of an app, for the users waiting on it.
        self._reconciled: dict[str, asyncio.Event] = {}

    @contextlib.asynccontextmanager
    async def app(self, app: str, operation: str) -> AsyncIterator[None]:
        def busy() -> str | None:
            return self._apps.get(app) or next(
                (op for (owner, _), op in self._procs.items() if owner == app), None
            )

        deadline = self._deadline(operation)
        if (held := await self._wait_out_reconciler(app, busy, deadline)) is not None:
            raise Conflict(f"app {app} is busy with {held}; try again when it has finished")
        self._apps[app] = operation
        if operation == RECONCILIATION:
            self._reconciled[app] = asyncio.Event()
        try:
            async with self._shared(deadline, (_app_lock(app), False)):
                yield
        finally:
            del self._apps[app]
            if operation == RECONCILIATION:
                self._reconciled.pop(app).set()

    @contextlib.asynccontextmanager
    async def proc(self, app: str, proc: str, operation: str) -> AsyncIterator[None]:
        def busy() -> str | None:
            return self._apps.get(app) or self._procs.get((app, proc))

        deadline = self._deadline(operation)
        if (held := await self._wait_out_reconciler(app, busy, deadline)) is not None:
            raise Conflict(
                f"proc {proc} of app {app} is busy with {held}; try again when it has finished"
            )
        self._procs[(app, proc)] = operation
        try:
            async with self._shared(
                deadline, (_app_lock(app), True), (_proc_lock(app, proc), False)
            ):
                yield
        finally:
            del self._procs[(app, proc)]

    def _deadline(self, operation: str) -> float:
        """Until when a claim may wait: never for the reconciler's own."""
        patience = 0.0 if operation == RECONCILIATION else self._patience
        return time.monotonic() + patience

    async def _wait_out_reconciler(
        self, app: str, busy: Callable[[], str | None], deadline: float
    ) -> str | None:
        """What still holds the app once a reconciliation on it is over (or time is up)."""
        while (held := busy()) == RECONCILIATION and (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._reconciled[app].wait()
        return held

    async def _try_lock(self, name: str, shared: bool, deadline: float) -> bool:
        assert self._locks is not None
        while not await self._locks.try_lock(name, shared=shared):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)  # another console's claim: poll the lock until deadline
        return True

    @contextlib.asynccontextmanager
    async def _shared(self, deadline: float, *claims: tuple[str, bool]) -> AsyncIterator[None]:
        if self._locks is None:
            yield
            return
        taken: list[tuple[str, bool]] = []
        try:
            for name, shared in claims:
                if not await self._try_lock(name, shared, deadline):
                    raise Conflict(
                        f"{_subject(name)} is busy with an operation on another console; "
                        "try again when it has finished"
                    )
                taken.append((name, shared))
            yield
        finally:
            for name, shared in reversed(taken):
                await self._locks.unlock(name, shared=shared)


def _app_lock(app: str) -> str:
    return f"lain-console/app/{app}"


def _proc_lock(app: str, proc: str) -> str:
    return f"lain-console/proc/{app}/{proc}"


def _subject(lock: str) -> str:
    parts = lock.split("/")
    return f"app {parts[2]}" if parts[1] == "app" else f"proc {parts[3]} of app {parts[2]}"
