from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

from resolvers.apps import deploy_app
from resolvers.core.context import OpContext, Principal, Services
from resolvers.core.events import AppEvent, AppEventKind
from resolvers.releases import publish_release
from resolvers.repos import register_repo
from resolvers.watch import Credentials, event_snapshot, while_permitted
from tests.releases import V1, two_proc_yaml
from tests.schema.test_query_cost import count_statements


async def test_an_event_is_read_once_for_all_its_subscribers(ctx: OpContext) -> None:
    await register_repo(ctx, name="hello")
    await publish_release(ctx, app="hello", meta_version=V1, lain_yaml=two_proc_yaml())
    await deploy_app(ctx, name="hello")
    event = AppEvent(cursor=10_001, kind=AppEventKind.INSTANCE, app="hello", proc="web")
    with count_statements() as statements:
        snapshots = await asyncio.gather(*(event_snapshot(ctx, event) for _ in range(50)))
    # The app once, its procs joined with their releases: once, not 50 times.
    assert len(statements) == 2
    assert {s.proc.name for s in snapshots if s.proc is not None} == {"web"}
    assert all(s == snapshots[0] for s in snapshots)


async def _events(cursors: range) -> AsyncIterator[AppEvent]:
    for cursor in cursors:
        yield AppEvent(cursor=cursor, kind=AppEventKind.APP, app="hello")


async def test_access_is_checked_once_per_event_for_subscribers_of_one_token(
    services: Services,
) -> None:
    secured = replace(services, auth_enabled=True)
    alice = OpContext(services=secured, principal=Principal("alice"))
    await register_repo(alice, name="hello")  # alice administers it
    asked: list[str] = []

    async def ask() -> Principal:
        asked.append("alice")
        return Principal("alice")

    credentials = Credentials(key="digest-of-alices-token", ask=ask)

    async def subscriber() -> list[int]:
        stream = while_permitted(
            alice, _events(range(1, 6)), app="hello", credentials=credentials, every=30.0
        )
        return [event.cursor async for event in stream]

    delivered = await asyncio.gather(*(subscriber() for _ in range(20)))
    assert delivered == [[1, 2, 3, 4, 5]] * 20
    # One check as each stream opens, then one per event shared by all twenty.
    assert len(asked) == 20 + 5
