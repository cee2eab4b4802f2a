"""Refuses overlapping operations on one app instead of letting them race."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Protocol

from resolvers.errors import Conflict

__all__ = ["OperationGuard", "SharedLocks"]


class SharedLocks(Protocol):
    """Named locks every console on the database sees (PostgreSQL advisory locks)."""

    async def try_lock(self, name: str, *, shared: bool = False) -> bool: ...

    async def unlock(self, name: str, *, shared: bool = False) -> None: ...


class OperationGuard:
    """Claims are taken without waiting: a second caller gets Conflict at once.

    An app-wide operation (deploy, update, undeploy) excludes every other operation on that
    app; proc operations exclude each other only on the same proc. Claims of this console
    are checked in-process (the event loop runs one task at a time, so checking and claiming
    need no lock). With `locks`, the claim is also taken there, so that another console on
    the same database is refused too: an app operation locks the app exclusively, a proc
    operation locks the app shared and the proc exclusively.
    """

    def __init__(self, locks: SharedLocks | None = None) -> None:
        self._locks = locks
        self._apps: dict[str, str] = {}
        self._procs: dict[tuple[str, str], str] = {}

    @contextlib.asynccontextmanager
    async def app(self, app: str, operation: str) -> AsyncIterator[None]:
        busy = self._apps.get(app) or next(
            (op for (owner, _), op in self._procs.items() if owner == app), None
        )
        if busy is not None:
            raise Conflict(f"app {app} is busy with {busy}; try again when it has finished")
        self._apps[app] = operation
        try:
            async with self._shared((_app_lock(app), False)):
                yield
        finally:
            del self._apps[app]

    @contextlib.asynccontextmanager
    async def proc(self, app: str, proc: str, operation: str) -> AsyncIterator[None]:
        busy = self._apps.get(app) or self._procs.get((app, proc))
        if busy is not None:
            raise Conflict(
                f"proc {proc} of app {app} is busy with {busy}; try again when it has finished"
            )
        self._procs[(app, proc)] = operation
        try:
            async with self._shared((_app_lock(app), True), (_proc_lock(app, proc), False)):
                yield
        finally:
            del self._procs[(app, proc)]

    @contextlib.asynccontextmanager
    async def _shared(self, *claims: tuple[str, bool]) -> AsyncIterator[None]:
        if self._locks is None:
            yield
            return
        taken: list[tuple[str, bool]] = []
        try:
            for name, shared in claims:
                if not await self._locks.try_lock(name, shared=shared):
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
