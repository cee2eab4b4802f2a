"""Event cursors are ids of the durable event log: they survive restarts, and a cursor the
log cannot serve is an error with a code, never a silent empty stream."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.app import create_app
from server.settings import Settings, load_settings
from store import eventlog
from tests.fakes.scheduler import FakeScheduler
from tests.live import GraphQLHttp, register_hello, serve, subscribe
from tests.schema.test_subscriptions import APP_EVENTS

DEPLOY = 'mutation { deployApp(input: {name: "hello"}) { errors { code } } }'
SCALE = (
    'mutation($n: Int!) { scaleProc(input: {app: "hello", proc: "web", numInstances: $n})'
    " { errors { code } } }"
)


@contextlib.asynccontextmanager
async def console(settings: Settings) -> AsyncIterator[tuple[str, GraphQLHttp]]:
    """One console process's lifetime: a fresh app (and scheduler) on the same database."""
    async with (
        serve(create_app(settings, scheduler=FakeScheduler())) as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
    ):
        yield base_url, GraphQLHttp(client)


def _settings(database_url: str, data_dir: Path) -> Settings:
    # No reconciler: the events are only those the test causes.
    return replace(
        load_settings({}), data_dir=data_dir, database_url=database_url, reconcile_interval=0
    )


async def _newest(sessions: async_sessionmaker[AsyncSession]) -> str:
    """The cursor before what the test does (the log outlives the tables' rows)."""
    async with sessions() as session:
        return str((await eventlog.event_bounds(session)).newest or 0)


async def _events(base_url: str, after: str, count: int) -> list[dict[str, Any]]:
    async with subscribe(base_url, APP_EVENTS, {"name": "hello", "after": after}) as sub:
        return [(await sub.next_event())["appEvents"] for _ in range(count)]


async def _error(base_url: str, after: str) -> dict[str, Any]:
    async with subscribe(base_url, APP_EVENTS, {"name": "hello", "after": after}) as sub:
        message = await sub.receive()
    # An error raised before the first event comes as a result with errors (see
    # test_subscribing_to_an_unknown_app_is_an_error).
    assert message["type"] in ("next", "error"), message
    errors = message["payload"]["errors"] if message["type"] == "next" else message["payload"]
    error: dict[str, Any] = errors[0]
    return error


async def test_a_client_resumes_after_a_restart_with_the_same_events(
    database_url: str, data_dir: Path, sessions: async_sessionmaker[AsyncSession]
) -> None:
    settings = _settings(database_url, data_dir)
    start = await _newest(sessions)
    async with console(settings) as (base_url, gql):
        await register_hello(gql)
        await gql(DEPLOY)
        before = await _events(base_url, start, 4)  # APP, PROC, PROC, APP
    async with console(settings) as (base_url, gql):
        await gql(SCALE, n=3)
        again = await _events(base_url, start, 5)
        resumed = await _events(base_url, before[1]["cursor"], 3)
    # The same cursors and the same snapshots, whichever console serves them.
    assert again[:4] == before
    assert again[4]["kind"] == "PROC"
    assert again[4]["proc"]["numInstances"] == 3
    # Exactly once and in order: everything after the cursor, nothing before it.
    assert resumed == again[2:]
    cursors = [int(e["cursor"]) for e in again]
    assert cursors == sorted(set(cursors))


@pytest.fixture
async def deployed(
    database_url: str, data_dir: Path, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[tuple[str, GraphQLHttp, list[dict[str, Any]]]]:
    """A console with hello deployed, and the four events of the deploy."""
    start = await _newest(sessions)
    async with console(_settings(database_url, data_dir)) as (base_url, gql):
        await register_hello(gql)
        await gql(DEPLOY)
        yield base_url, gql, await _events(base_url, start, 4)


async def test_a_cursor_no_event_had_is_invalid(
    deployed: tuple[str, GraphQLHttp, list[dict[str, Any]]],
) -> None:
    base_url, gql, events = deployed
    newest = events[-1]["cursor"]
    error = await _error(base_url, str(int(newest) + 1000))
    assert error["extensions"] == {"code": "INVALID", "field": "after"}
    assert f"newer than the newest event ({newest})" in error["message"]
    # The newest cursor itself is fine: nothing yet, then what comes.
    async with subscribe(base_url, APP_EVENTS, {"name": "hello", "after": newest}) as sub:
        await gql(SCALE, n=2)
        assert (await sub.next_event())["appEvents"]["cursor"] == str(int(newest) + 1)


async def test_a_pruned_cursor_has_expired_and_names_the_oldest_one(
    deployed: tuple[str, GraphQLHttp, list[dict[str, Any]]],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    base_url, _, events = deployed
    async with sessions.begin() as session:  # the retention ran: two events remain
        await eventlog.prune_events(session, keep=2, max_age_seconds=3600)
    error = await _error(base_url, events[0]["cursor"])
    assert error["extensions"] == {
        "code": "CURSOR_EXPIRED",
        "field": "after",
        "oldestCursor": events[1]["cursor"],
    }
    assert await _events(base_url, events[1]["cursor"], 2) == events[2:]
