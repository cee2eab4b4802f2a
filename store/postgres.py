"""PostgreSQL's coordination primitives for several consoles on one database.

Each needs a connection of its own that outlives any transaction (session advisory locks
belong to the connection that took them, LISTEN delivers to the connection that listens),
so these use asyncpg directly rather than the engine's pool. PostgreSQL releases a session
lock when its connection ends, also when the console holding it is killed; the server-side
TCP keepalives set here make it notice a console whose host vanished within seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import asyncpg
from sqlalchemy.engine import make_url

from store.eventlog import NOTIFY_CHANNEL

__all__ = [
    "CONNECTION_ERRORS",
    "LEADER_LOCK",
    "LOCAL_BACKEND_LOCK",
    "AdvisoryLocks",
    "connect",
    "listen_for_events",
    "postgres_dsn",
]

log = logging.getLogger(__name__)

# Advisory lock keys of the whole console ("lainLdr", "lainLoc" in ASCII); per-app keys are
# hashes of their names (`AdvisoryLocks`).
LEADER_LOCK = 0x6C61696E4C6472
LOCAL_BACKEND_LOCK = 0x6C61696E4C6F63

# Exceptions that mean "the connection or the server is gone", not a bug of ours.
CONNECTION_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


def postgres_dsn(database_url: str) -> str | None:
    """The libpq URL asyncpg takes, or None when the database is not PostgreSQL."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def connect(dsn: str, *, dead_after: float = 10.0) -> asyncpg.Connection:
    """A connection whose server side gives up on a silent client within ~`dead_after` s."""
    idle = max(1, int(dead_after / 3))
    return await asyncpg.connect(
        dsn,
        timeout=dead_after,
        server_settings={
            "application_name": "lain-console",
            "tcp_keepalives_idle": str(idle),
            "tcp_keepalives_interval": "1",
            "tcp_keepalives_count": str(idle),
        },
    )


class AdvisoryLocks:
    """Named session advisory locks taken without waiting, on one connection per console.

    Locks of one session stack instead of conflicting, so this is only what keeps
    *different* consoles apart; callers exclude their own overlapping claims in-process
    first. If the connection drops, PostgreSQL has released its locks: the next call
    reconnects, and the loss is logged.
    """

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._connection: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()  # one query at a time on the connection

    async def try_lock(self, name: str, *, shared: bool = False) -> bool:
        function = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
        return bool(await self._call(f"SELECT {function}(hashtextextended($1, 0))", name))

    async def unlock(self, name: str, *, shared: bool = False) -> None:
        function = "pg_advisory_unlock_shared" if shared else "pg_advisory_unlock"
        try:
            await self._call(f"SELECT {function}(hashtextextended($1, 0))", name, reconnect=False)
        except CONNECTION_ERRORS as exc:  # gone with its connection already
            log.warning("could not release the advisory lock %s: %s", name, exc)

    async def close(self) -> None:
        async with self._lock:
            if self._connection is not None:
                self._connection.terminate()
                self._connection = None

    async def _call(self, query: str, name: str, *, reconnect: bool = True) -> object:
        async with self._lock:
            if self._connection is not None and self._connection.is_closed():
                log.warning("the advisory lock connection was lost; its locks were released")
                self._connection = None
            if self._connection is None:
                if not reconnect:
                    return False
                self._connection = await connect(self._dsn)
            return await self._connection.fetchval(query, name)


async def listen_for_events(dsn: str, wake: Callable[[], None], *, retry: float = 1.0) -> None:
    """Call `wake` on every event-log NOTIFY, reconnecting until cancelled.

    The log is the truth: after every (re)connection `wake` runs once too, for what was
    written while nobody listened.
    """
    while True:
        try:
            connection = await connect(dsn)
        except CONNECTION_ERRORS as exc:
            log.warning("cannot listen for events: %s; retrying", exc)
            await asyncio.sleep(retry)
            continue
        try:
            await _listen(connection, wake)
        except CONNECTION_ERRORS as exc:
            log.warning("event notifications stopped: %s; reconnecting", exc)
        finally:
            connection.terminate()
        await asyncio.sleep(retry)


async def _listen(connection: asyncpg.Connection, wake: Callable[[], None]) -> None:
    """Deliver notifications to `wake` until the connection is lost."""
    lost = asyncio.Event()
    connection.add_termination_listener(lambda _connection: lost.set())
    await connection.add_listener(NOTIFY_CHANNEL, lambda *_args: wake())
    wake()
    # A dead peer is only noticed by a query: probe now and then.
    while not lost.is_set():
        try:
            await asyncio.wait_for(lost.wait(), 5.0)
        except TimeoutError:
            await asyncio.wait_for(connection.fetchval("SELECT 1"), 5.0)
