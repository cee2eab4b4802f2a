"""What re-checking subscribers' access costs per delivered event (`python -m bench.recheck`).

With auth on, every event a subscription delivers first re-reads the caller's token and its
access to the app (resolvers/watch.py `while_permitted`), once per event for all subscribers
holding the same token; with auth off it passes straight through. This feeds the same
in-memory events to 1 and to 100 subscribers (one token, as a user's many tabs), on a
migrated SQLite database with one user and one app, and prints the time and the SQL
statements each event costs in all. Subscribers with different tokens each pay the check.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from bench.report import Table
from bench.sqlcount import StatementCounter
from resolvers import users
from resolvers.core.context import SYSTEM, OpContext, Principal, Services
from resolvers.core.events import AppEvent, AppEventKind, EventBus
from resolvers.watch import Credentials, while_permitted
from server.auth import Authenticator
from store.engine import make_engine, make_sessionmaker
from store.migrate import upgrade
from store.models import App, Maintainer, MaintainerRole
from tests.fakes.scheduler import FakeScheduler

EVENTS = 500
SUBSCRIBERS = (1, 100)


async def _events(count: int) -> AsyncIterator[AppEvent]:
    for cursor in range(count):
        yield AppEvent(cursor=cursor, kind=AppEventKind.APP, app="hello")


async def _measure(url: str, *, auth: bool, subscribers: int) -> tuple[float, float]:
    """Microseconds and SQL statements per event, delivered to every subscriber."""
    engine = make_engine(url)
    try:
        services = Services(
            sessions=make_sessionmaker(engine),
            scheduler=FakeScheduler(),
            bus=EventBus(),
            auth_enabled=auth,
        )
        _, token = await users.create_token(OpContext(services, SYSTEM), user="alice")
        authenticator = Authenticator(services)

        async def reauthenticate() -> Principal | None:
            return await authenticator.principal(token)

        ctx = OpContext(services, Principal("alice"))
        credentials = Credentials(key=token, ask=reauthenticate)

        async def subscriber() -> int:
            stream = while_permitted(
                ctx, _events(EVENTS), app="hello", credentials=credentials, every=30.0
            )
            return sum([1 async for _ in stream])

        with StatementCounter() as counter:
            started = time.perf_counter()
            delivered = await asyncio.gather(*(subscriber() for _ in range(subscribers)))
            elapsed = time.perf_counter() - started
        assert delivered == [EVENTS] * subscribers
        return elapsed / EVENTS * 1e6, counter.statements / EVENTS
    finally:
        await engine.dispose()


async def _seed(url: str) -> None:
    engine = make_engine(url)
    try:
        sessions = make_sessionmaker(engine)
        services = Services(sessions=sessions, scheduler=FakeScheduler(), bus=EventBus())
        await users.add_user(OpContext(services, SYSTEM), name="alice")
        async with sessions.begin() as session:
            app = App(name="hello")
            session.add(app)
            await session.flush()
            session.add(Maintainer(app_id=app.id, username="alice", role=MaintainerRole.NORMAL))
    finally:
        await engine.dispose()


def table() -> Table:
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite+aiosqlite:///{Path(scratch) / 'recheck.db'}"
        upgrade(url)
        asyncio.run(_seed(url))
        result = Table(
            f"subscription access re-check, {EVENTS} events (SQLite)",
            ["auth", "subscribers (one token)", "µs per event", "SQL statements per event"],
        )
        for auth in (False, True):
            for subscribers in SUBSCRIBERS:
                micros, statements = asyncio.run(_measure(url, auth=auth, subscribers=subscribers))
                label = "on" if auth else "off"
                result.add(label, subscribers, f"{micros:.0f}", f"{statements:.1f}")
    return result


if __name__ == "__main__":
    print(table().render())
