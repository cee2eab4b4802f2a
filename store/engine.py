"""Engine and session factories; one code path for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio.to_thread
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import StaticPool

from store.sqlite_driver import OneTripDBAPI
from store.stateversion import VersionedSession

__all__ = [
    "check_database",
    "make_engine",
    "make_sessionmaker",
    "make_sqlite_file_private",
    "open_engine",
    "queued_writers",
    "sqlite_file",
]

SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")


def make_engine(url: str) -> AsyncEngine:
    """An async engine for `url`; raises ValueError for a driver we do not support."""
    drivername = make_url(url).drivername
    if drivername not in SUPPORTED_DRIVERS:
        raise ValueError(
            f"database URL driver {drivername!r} is not supported; use one of "
            + ", ".join(SUPPORTED_DRIVERS)
        )
    if drivername == "sqlite+aiosqlite":
        return _sqlite_engine(url)
    return create_async_engine(
        url, pool_size=10, max_overflow=10, pool_pre_ping=True, pool_recycle=1800
    )


_BUSY_SECONDS = 30  # SQLite's busy timeout, and how long a writer waits for its turn
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")


class _SqliteWriters:
    """Lets one connection at a time write to a SQLite file, the others queued in order.

    SQLite has one write lock per file. A connection that finds it taken is left to the busy
    handler, which sleeps 1, 2, 5 ... up to 100 ms between tries and favours no one, so
    with a dozen concurrent writers some wait seconds (a scale request measured p99 3 s).
    Here a connection takes an asyncio lock (first come, first served) before its first
    writing statement and gives it back when its transaction ends; SQLite's lock is then
    free whenever a writer reaches it. Reads never wait for it (WAL: readers do not block
    the writer). Other processes on the file still meet SQLite's busy timeout as before.
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._holder: object | None = None  # the DBAPI connection writing now
        self.waiting = 0  # connections queued for their turn

    def before_execute(self, conn: Connection, statement: str) -> None:
        if not statement.lstrip()[:7].upper().startswith(_WRITES):
            return
        dbapi_connection = conn.connection.dbapi_connection
        if dbapi_connection is None or self._holder is dbapi_connection:
            return
        dbapi_connection.run_async(lambda _: self._acquire())
        self._holder = dbapi_connection

    def ended(self, dbapi_connection: object) -> None:
        """The connection's transaction ended (or it went back to the pool)."""
        if dbapi_connection is not None and self._holder is dbapi_connection:
            self._holder = None
            self._lock.release()

    async def _acquire(self) -> None:
        self.waiting += 1
        try:
            async with asyncio.timeout(_BUSY_SECONDS):
                await self._lock.acquire()
        except TimeoutError:
            # What SQLite itself says once its busy timeout has run out.
            raise sqlite3.OperationalError("database is locked") from None
        finally:
            self.waiting -= 1


_WRITERS: weakref.WeakKeyDictionary[Engine, _SqliteWriters] = weakref.WeakKeyDictionary()


def queued_writers(engine: AsyncEngine) -> int:
    """How many connections wait for their turn to write (SQLite; 0 for PostgreSQL)."""
    writers = _WRITERS.get(engine.sync_engine)
    return 0 if writers is None else writers.waiting


def _sqlite_engine(url: str) -> AsyncEngine:
    kwargs: dict[str, Any] = {"connect_args": {"timeout": _BUSY_SECONDS}}
    if make_url(url).database in (None, "", ":memory:"):
        # One shared connection, or every session would see its own empty database.
        kwargs["poolclass"] = StaticPool
    else:
        # Kept connections: with the default 5, a burst of concurrent requests opened and
        # closed overflow connections all the time, each a new aiosqlite thread and four
        # PRAGMAs (py-spy: 8 % of the event loop under 16 concurrent reads).
        kwargs.update(pool_size=20, max_overflow=10)
    engine = create_async_engine(url, module=OneTripDBAPI(), **kwargs)
    writers = _WRITERS[engine.sync_engine] = _SqliteWriters()

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _queue_writer(conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        writers.before_execute(conn, statement)

    # The lock is given back as the transaction ends (these events come just before the
    # DBAPI commit or rollback), and at the latest when the connection returns to the pool.
    @event.listens_for(engine.sync_engine, "commit")
    @event.listens_for(engine.sync_engine, "rollback")
    def _transaction_ended(conn: Connection) -> None:
        writers.ended(conn.connection.dbapi_connection)

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _returned(dbapi_connection: Any, _record: Any) -> None:
        writers.ended(dbapi_connection)

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")  # off by default in SQLite
        cursor.execute("PRAGMA journal_mode=WAL")  # readers don't block the one writer
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_SECONDS * 1000}")
        cursor.close()

    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: objects stay readable after commit without implicit (async) IO.
    # Every committed write bumps the state version that read caches key on.
    return async_sessionmaker(
        engine, expire_on_commit=False, autoflush=False, sync_session_class=VersionedSession
    )


def make_sqlite_file_private(url: str) -> None:
    """Create a SQLite database file readable by its owner only, or make it so (blocking).

    The database holds every token digest and every app's env; apps of the local backend
    run as other uids and must not read it. SQLite gives the -wal and -shm files the mode
    of the database file when it creates them; ones left by an older version are fixed too.
    Nothing happens for PostgreSQL or an in-memory database.
    """
    path = sqlite_file(url)
    if path is None:
        return
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    except FileNotFoundError:
        return  # no such directory: SQLite reports it when the database is first used
    for name in (path, f"{path}-wal", f"{path}-shm", f"{path}-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(name, 0o600)


def sqlite_file(url: str) -> Path | None:
    """The absolute path of a SQLite database file; None for in-memory or other databases."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).resolve()


@contextlib.asynccontextmanager
async def open_engine(url: str) -> AsyncIterator[AsyncEngine]:
    await anyio.to_thread.run_sync(make_sqlite_file_private, url)
    engine = make_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def check_database(engine: AsyncEngine) -> str | None:
    """None when the database answers a trivial query, else why it does not."""
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "unreachable"; the reason is reported
        return f"{type(exc).__name__}: {exc}".strip()
    return None
