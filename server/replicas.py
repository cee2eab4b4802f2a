"""Several consoles on one PostgreSQL database: who leads, and who may not start at all.

The leader is the console holding the leader advisory lock on a connection of its own; it
alone consumes the scheduler's event stream into the event log and runs the reconciler.
The others try for the lock every quarter of the takeover time, so when the leader dies
(PostgreSQL drops its connection and with it the lock) one of them leads within that time.
A leader that cannot reach the database for a quarter of it stops leading before another
can start.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import anyio
import asyncpg

from store.postgres import CONNECTION_ERRORS, LEADER_LOCK, LOCAL_BACKEND_LOCK, connect

__all__ = ["ReplicaRefused", "hold_local_backend", "lead_when_elected", "local_backend_free"]

log = logging.getLogger(__name__)


class ReplicaRefused(Exception):
    """This console must not run beside the one already using the database."""


_LOCAL_TAKEN = (
    "another lain-console with the local backend already uses this database; the local "
    "backend runs its apps on the console's own machine, so it allows one console only. "
    "Run several replicas with LAIN_CONSOLE_BACKEND=nomad"
)


async def lead_when_elected(
    dsn: str, *, takeover_seconds: float, lead: Callable[[], Coroutine[Any, Any, None]]
) -> None:
    """Run `lead()` whenever this console holds the leadership, until cancelled."""
    poll = takeover_seconds / 4
    while True:
        try:
            connection = await connect(dsn, dead_after=takeover_seconds)
        except CONNECTION_ERRORS as exc:
            log.warning("leader election: cannot connect: %s", exc)
            await anyio.sleep(poll)
            continue
        try:
            while True:
                if await connection.fetchval("SELECT pg_try_advisory_lock($1)", LEADER_LOCK):
                    break
                await anyio.sleep(poll)
            log.info("this console leads: it consumes scheduler events and reconciles")
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(lead)
                await _hold(connection, poll)
                tasks.cancel_scope.cancel()
        except CONNECTION_ERRORS as exc:
            log.warning("leader election: %s", exc)
        finally:
            connection.terminate()
        log.warning("this console no longer leads")
        await anyio.sleep(poll)


async def _hold(connection: asyncpg.Connection, poll: float) -> None:
    """Return (or raise) as soon as the connection holding the lock may be gone."""
    while True:
        await anyio.sleep(poll)
        with anyio.fail_after(poll):
            await connection.fetchval("SELECT 1")


async def local_backend_free(dsn: str) -> None:
    """Raises ReplicaRefused when a local-backend console already uses the database
    (the CLI asks before it starts serving, to refuse with a message, not a traceback)."""
    async with hold_local_backend(dsn):
        pass


@contextlib.asynccontextmanager
async def hold_local_backend(dsn: str) -> AsyncIterator[None]:
    """Be the one local-backend console on this database while inside. Raises ReplicaRefused."""
    connection = await connect(dsn)
    try:
        if not await connection.fetchval("SELECT pg_try_advisory_lock($1)", LOCAL_BACKEND_LOCK):
            raise ReplicaRefused(_LOCAL_TAKEN)
        yield
    finally:
        connection.terminate()
