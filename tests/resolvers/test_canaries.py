"""Canary rollouts in the resolvers: how an update asks for them, what is refused before
anything is stored, promoting through the rollout guard, and the reconciler."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backends.types import Canary, EventKind, SchedulerEvent
from resolvers.apps import deploy_app, get_app, update_app
from resolvers.canaries import promote_app
from resolvers.core.context import SYSTEM, OpContext
from resolvers.core.errors import Conflict, InvalidInput
from resolvers.procs import get_proc, promote_proc, scale_proc
from resolvers.reconcile import reconcile
from resolvers.releases import publish_release
from resolvers.repos import register_repo
from store.models import AuditEntry, Proc
from tests.fakes.scheduler import FakeScheduler
from tests.releases import V1, V2, two_proc_yaml

WEB, JOBS = "hello.web.web", "hello.worker.jobs"


@pytest.fixture
async def deployed(ctx: OpContext) -> None:
    await register_repo(ctx, name="hello")
    for version in (V1, V2):
        await publish_release(ctx, app="hello", meta_version=version, lain_yaml=two_proc_yaml())
    await deploy_app(ctx, name="hello", meta_version=V1)


pytestmark = pytest.mark.usefixtures("deployed")


async def _canary_update(ctx: OpContext, scheduler: FakeScheduler, canary: Canary) -> None:
    """Update to V2 with canaries; the scheduler's events reach the bus, as they do live."""
    await update_app(ctx, name="hello", meta_version=V2, canary=canary)
    for job_id in (WEB, JOBS):
        state = await scheduler.state(job_id)
        ctx.services.bus.publish_scheduler_event(
            SchedulerEvent(cursor=1, kind=EventKind.PROC, job_id=job_id, proc=state)
        )


async def _audit(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str]]:
    async with sessions() as session:
        rows = (await session.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars()
        return [(entry.operation, entry.message) for entry in rows]


async def _stored(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str, str]]:
    async with sessions() as session:
        rows = (await session.execute(select(Proc).order_by(Proc.id))).scalars()
        return [(p.name, p.meta_version, p.last_error) for p in rows]


async def test_an_update_with_canaries_applies_them_to_each_long_running_proc(
    ctx: OpContext, scheduler: FakeScheduler
) -> None:
    canary = Canary(instances=1, auto_promote_after=30)
    await _canary_update(ctx, scheduler, canary)

    assert [scheduler.jobs[job_id].canary for job_id in (WEB, JOBS)] == [canary, canary]
    web = await get_proc(ctx, app="hello", proc="web")
    assert web.meta_version == V2
    state = (await scheduler.states([WEB]))[WEB]
    assert state.canary is not None
    assert state.canary.desired == 1


@pytest.mark.parametrize(
    ("canary", "field", "message"),
    [
        (Canary(instances=0), "canary.instances", "between 1 and 1000, got 0"),
        (Canary(instances=1001), "canary.instances", "between 1 and 1000, got 1001"),
        (Canary(instances=1, auto_promote_after=0), "canary.autoPromoteAfter", "got 0"),
        (Canary(instances=1, auto_promote_after=3601), "canary.autoPromoteAfter", "got 3601"),
    ],
)
async def test_canaries_out_of_range_are_refused_before_anything_is_stored(
    ctx: OpContext,
    scheduler: FakeScheduler,
    sessions: async_sessionmaker[AsyncSession],
    canary: Canary,
    field: str,
    message: str,
) -> None:
    before, audit, calls = await _stored(sessions), await _audit(sessions), len(scheduler.calls)

    with pytest.raises(InvalidInput, match=message) as refused:
        await update_app(ctx, name="hello", meta_version=V2, canary=canary)

    assert refused.value.field == field
    assert (await _stored(sessions), await _audit(sessions)) == (before, audit)
    assert scheduler.calls[calls:] == []


async def test_a_scheduler_without_canaries_refuses_them_up_front(
    ctx: OpContext, scheduler: FakeScheduler, sessions: async_sessionmaker[AsyncSession]
) -> None:
    scheduler.canary_deploys = False
    before = await _stored(sessions)

    with pytest.raises(InvalidInput, match="canary deploys need the Nomad backend") as refused:
        await update_app(ctx, name="hello", meta_version=V2, canary=Canary(instances=1))
    assert refused.value.field == "canary"
    with pytest.raises(InvalidInput, match="canary deploys need the Nomad backend"):
        await promote_app(ctx, name="hello")
    with pytest.raises(InvalidInput, match="canary deploys need the Nomad backend"):
        await promote_proc(ctx, app="hello", proc="web")

    # Nothing half-done: the app still runs V1, and the reconciler has nothing to apply
    # later without the canaries the user asked for.
    assert await _stored(sessions) == before
    assert (await get_app(ctx, name="hello")).meta_version == V1


async def test_promote_goes_through_the_rollout_guard_that_refuses_the_rest(
    ctx: OpContext, scheduler: FakeScheduler, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _canary_update(ctx, scheduler, Canary(instances=1))

    with pytest.raises(Conflict, match=r"busy with a rollout of hello\.web\.web"):
        await scale_proc(ctx, app="hello", proc="web", num_instances=3)
    view = await promote_proc(ctx, app="hello", proc="web")

    assert view.name == "web"
    assert scheduler.calls[-1] == ("promote", WEB)
    assert ("PROMOTE", "web") in await _audit(sessions)


async def test_promote_app_promotes_every_proc_waiting_and_audits_once(
    ctx: OpContext, scheduler: FakeScheduler, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _canary_update(ctx, scheduler, Canary(instances=1))

    await promote_app(ctx, name="hello")

    assert [c for c in scheduler.calls if c[0] == "promote"] == [
        ("promote", WEB),
        ("promote", JOBS),
    ]
    assert [a for a in await _audit(sessions) if a[0] == "PROMOTE"] == [("PROMOTE", "web jobs")]
    assert scheduler.canaries == {}


async def test_promote_with_nothing_to_promote_is_a_conflict_that_changes_nothing(
    ctx: OpContext, scheduler: FakeScheduler, sessions: async_sessionmaker[AsyncSession]
) -> None:
    before, audit = await _stored(sessions), await _audit(sessions)

    with pytest.raises(Conflict, match="app hello has no canaries to promote") as refused:
        await promote_app(ctx, name="hello")
    assert refused.value.field == "name"
    assert not [c for c in scheduler.calls if c[0] == "promote"]
    assert await _audit(sessions) == audit

    with pytest.raises(Conflict, match="nothing to promote"):
        await promote_proc(ctx, app="hello", proc="web")
    # The refusal is not the proc's error: it still reads as it did.
    assert await _stored(sessions) == before


async def test_the_reconciler_leaves_a_canary_rollout_alone_and_sees_no_drift_after(
    ctx: OpContext, scheduler: FakeScheduler
) -> None:
    await _canary_update(ctx, scheduler, Canary(instances=1))
    system = OpContext(services=ctx.services, principal=SYSTEM)

    waiting = await reconcile(system)
    assert (waiting.applied, waiting.scaled, waiting.failed) == ([], [], {})
    assert scheduler.jobs[WEB].canary == Canary(instances=1)  # not re-applied without

    await promote_app(ctx, name="hello")
    # The desired jobs carry no canaries, the applied ones do: the same spec all the same.
    after = await reconcile(system)
    assert (after.applied, after.scaled, after.failed) == ([], [], {})
