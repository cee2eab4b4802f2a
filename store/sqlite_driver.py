"""SQLAlchemy's aiosqlite adapter, with one trip to the connection's thread per statement.

aiosqlite runs every call on a connection in that connection's own thread: each call is a
queue put, a thread wake-up and a `call_soon_threadsafe` back to the event loop. SQLAlchemy's
adapter makes four such calls per statement (open a cursor, execute, fetch every row, close
the cursor; `python -m bench.sqltrips` counts them), where one would do: here the cursor runs
the whole statement in one function on aiosqlite's thread and keeps what SQLAlchemy asks of
it afterwards (description, rowcount, lastrowid, the rows). Its connections also make no
trip for a commit or rollback with no transaction open, and stop aiosqlite's thread only
once when they are closed or terminated. Everything else (isolation level, server-side
cursors, error handling) is SQLAlchemy's adapter unchanged.

It reaches into aiosqlite's `Connection._execute`, `_conn`, `_connection` and `_running`,
as SQLAlchemy's own adapter does (`_tx`, `_conn`); requirements.lock pins the aiosqlite
version this was written for, and tests/store/test_sqlite_driver.py checks each of them.
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
from collections.abc import Sequence
from typing import Any, cast

import aiosqlite
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_connection
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

__all__ = ["OneTripDBAPI"]

# What a statement leaves for SQLAlchemy: the cursor's description, rowcount, lastrowid,
# and its rows (none for a statement that returns none).
_Outcome = tuple[Any, int, int | None, list[Any]]


def _execute(
    connection: sqlite3.Connection, operation: str, parameters: Sequence[Any] | None
) -> _Outcome:
    """One statement, from cursor to closed cursor, on aiosqlite's thread."""
    cursor = connection.cursor()
    try:
        if parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


def _execute_many(
    connection: sqlite3.Connection, operation: str, parameters: Sequence[Sequence[Any]]
) -> _Outcome:
    cursor = connection.cursor()
    try:
        cursor.executemany(operation, parameters)
        return cursor.description, cursor.rowcount, cursor.lastrowid, []
    finally:
        cursor.close()


class _OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A client-side cursor whose statement runs in one call on aiosqlite's thread; no
    aiosqlite cursor is ever opened for it."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_dbapi_connection) -> None:
        # Not the base initialiser: that opens an aiosqlite cursor (a trip of its own).
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return cast(int, self._lastrowid)

    async def _execute_async(self, operation: Any, parameters: Any) -> None:
        await self._run(_execute, operation, parameters)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> None:
        await self._run(_execute_many, operation, seq_of_parameters)

    async def _run(self, function: Any, operation: Any, parameters: Any) -> None:
        connection = cast(aiosqlite.Connection, self._connection)
        async with self._adapt_connection._execute_mutex:
            outcome: _Outcome = await connection._execute(  # type: ignore[no-untyped-call]
                function, connection._conn, operation, parameters
            )
        self._description, self._rowcount, self._lastrowid, rows = outcome
        self._rows = collections.deque(rows)

    async def _async_soft_close(self) -> None:
        """Nothing to close on aiosqlite's thread: the statement's cursor already is."""

    def close(self) -> None:
        self._rows.clear()


class _OneTripConnection(AsyncAdapt_aiosqlite_connection):
    """Hands out one-trip cursors; commits and rolls back only with a transaction open;
    stops aiosqlite's thread once, however it is closed.

    SQLAlchemy terminates a connection whose statement was cancelled: a graceful close in
    a shielded task and, should the waiting be cancelled again (anyio cancels a scope's
    tasks until they end), a force close (`stop()`) as well. aiosqlite's `close()` after a
    `stop()` queues a second stop behind the first, which ends the thread: the close then
    waits for ever, and so does the event loop's shutdown that cancels it (seen as a test
    teardown hanging under load). Here each way of closing asks the thread to stop only
    while it still runs, and waits only for that stop.
    """

    __slots__ = ()

    _cursor_cls = _OneTripCursor

    def _stop(self) -> asyncio.Future[Any] | None:
        """Close the SQLite connection and end aiosqlite's thread, once; the stop's future,
        or None when the thread was asked to stop before."""
        connection = cast(aiosqlite.Connection, self._connection)
        if not connection._running:
            return None
        return connection.stop()

    def commit(self) -> None:
        if not self._in_transaction():
            return  # sqlite3's commit would do nothing: no trip for it
        super().commit()

    def rollback(self) -> None:
        if not self._in_transaction():
            return
        super().rollback()

    def _in_transaction(self) -> bool:
        """Whether the SQLite connection has a transaction open.

        Python's sqlite3 opens one only before a writing statement, and its commit and
        rollback do nothing without one: a session that only read, and the pool's reset
        after it, each made a trip to aiosqlite's thread for nothing (4 of a REST object
        read's 6). Read here, between statements, while that thread is idle; a closed
        connection counts as in one, so that SQLAlchemy's adapter says what it says then.
        """
        connection = cast(aiosqlite.Connection, self._connection)
        sqlite = connection._connection
        return sqlite is None or sqlite.in_transaction

    def close(self) -> None:
        stopped = self._stop()
        if stopped is None:
            return
        try:
            await_(stopped)
        except Exception as error:
            self._handle_exception(error)

    async def _terminate_graceful_close(self) -> None:
        stopped = self._stop()
        if stopped is not None:
            await stopped

    def _terminate_force_close(self) -> None:
        self._stop()


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module SQLAlchemy's aiosqlite dialect uses, handing out connections whose
    cursors make one trip per statement (`create_async_engine(url, module=OneTripDBAPI())`)."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        adapted = super().connect(*arg, **kw)
        return _OneTripConnection(self, adapted._connection)
