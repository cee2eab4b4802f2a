"""Refuses overlapping operations on one app instead of letting them race."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from resolvers.errors import Conflict

__all__ = ["OperationGuard"]


class OperationGuard:
    """Claims are taken without waiting: a second caller gets Conflict at once.

    An app-wide operation (deploy, update, undeploy) excludes every other operation on that
    app; proc operations exclude each other only on the same proc. The event loop runs one
    task at a time, so checking and claiming need no lock. (Several console processes on one
    database are kept apart by the apps' status column as well.)
    """

    def __init__(self) -> None:
        self._apps: dict[str, str] = {}
        self._procs: dict[tuple[str, str], str] = {}

    @contextlib.contextmanager
    def app(self, app: str, operation: str) -> Iterator[None]:
        busy = self._apps.get(app) or next(
            (op for (owner, _), op in self._procs.items() if owner == app), None
        )
        if busy is not None:
            raise Conflict(f"app {app} is busy with {busy}; try again when it has finished")
        self._apps[app] = operation
        try:
            yield
        finally:
            del self._apps[app]

    @contextlib.contextmanager
    def proc(self, app: str, proc: str, operation: str) -> Iterator[None]:
        busy = self._apps.get(app) or self._procs.get((app, proc))
        if busy is not None:
            raise Conflict(
                f"proc {proc} of app {app} is busy with {busy}; try again when it has finished"
            )
        self._procs[(app, proc)] = operation
        try:
            yield
        finally:
            del self._procs[(app, proc)]
