from __future__ import annotations

import asyncio

from resolvers.apps import deploy_app
from resolvers.context import OpContext
from resolvers.events import AppEvent, AppEventKind
from resolvers.releases import publish_release
from resolvers.repos import register_repo
from resolvers.watch import event_snapshot
from tests.releases import V1, two_proc_yaml
from tests.schema.test_query_cost import count_statements


async def test_an_event_is_read_once_for_all_its_subscribers(ctx: OpContext) -> None:
    await register_repo(ctx, name="hello")
    await publish_release(ctx, app="hello", meta_version=V1, lain_yaml=two_proc_yaml())
    await deploy_app(ctx, name="hello")
    event = AppEvent(cursor=10_001, kind=AppEventKind.INSTANCE, app="hello", proc="web")
    with count_statements() as statements:
        snapshots = await asyncio.gather(*(event_snapshot(ctx, event) for _ in range(50)))
    assert len(statements) == 4  # the app, its procs and their releases: once, not 50 times
    assert {s.proc.name for s in snapshots if s.proc is not None} == {"web"}
    assert all(s == snapshots[0] for s in snapshots)
