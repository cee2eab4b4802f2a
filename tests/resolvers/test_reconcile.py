from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from resolvers.apps import deploy_app, get_app
from resolvers.core.context import SYSTEM, OpContext
from resolvers.procs import scale_proc
from resolvers.readmodel.views import AppStatus, ProcState
from resolvers.reconcile import reconcile
from resolvers.releases import publish_release
from resolvers.repos import register_repo
from store.models import App, AuditEntry
from tests.fakes.scheduler import FakeScheduler
from tests.releases import V1, two_proc_yaml
from tests.resolvers.test_dependencies import SERVICE, USES_ECHO, client_yaml


async def _deployed(ctx: OpContext, name: str = "hello", yaml: str | None = None) -> None:
    await register_repo(ctx, name=name)
    await publish_release(ctx, app=name, meta_version=V1, lain_yaml=yaml or two_proc_yaml(name))
    await deploy_app(ctx, name=name)


async def _web_scaled_behind_the_schedulers_back(ctx: OpContext, scheduler: FakeScheduler) -> None:
    """hello deployed with 3 web instances desired, while the scheduler runs 1."""
    await _deployed(ctx)
    await scale_proc(ctx, app="hello", proc="web", num_instances=3)
    scheduler.jobs["hello.web.web"] = scheduler.jobs["hello.web.web"].with_count(1)


def _system(ctx: OpContext) -> OpContext:
    return OpContext(services=ctx.services, principal=SYSTEM)


async def test_nothing_to_do_when_the_scheduler_matches(ctx: OpContext) -> None:
    await _deployed(ctx)
    report = await reconcile(_system(ctx))
    assert (report.applied, report.scaled, report.failed) == ([], [], {})


async def test_lost_jobs_are_reapplied_and_audited(
    ctx: OpContext, scheduler: FakeScheduler, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _deployed(ctx)
    expected = dict(scheduler.jobs)
    scheduler.jobs.clear()
    report = await reconcile(_system(ctx))
    assert sorted(report.applied) == sorted(expected)
    assert scheduler.jobs == expected
    async with sessions() as session:
        entry = (
            (await session.execute(select(AuditEntry).order_by(AuditEntry.id.desc())))
            .scalars()
            .first()
        )
    assert entry is not None
    assert (entry.username, entry.operation) == ("system", "RECONCILE")
    assert "applied hello.web.web" in entry.message


async def test_drifted_count_and_spec_are_corrected(
    ctx: OpContext, scheduler: FakeScheduler
) -> None:
    await _web_scaled_behind_the_schedulers_back(ctx, scheduler)
    jobs = scheduler.jobs["hello.worker.jobs"]
    scheduler.jobs["hello.worker.jobs"] = jobs.with_resources(cpu=7, memory_bytes=1)
    report = await reconcile(_system(ctx))
    assert report.scaled == ["hello.web.web"]
    assert report.applied == ["hello.worker.jobs"]
    assert scheduler.jobs["hello.web.web"].num_instances == 3
    assert scheduler.jobs["hello.worker.jobs"] == jobs


async def test_a_job_rolling_out_is_left_alone_until_its_rollout_ends(
    ctx: OpContext, scheduler: FakeScheduler
) -> None:
    await _web_scaled_behind_the_schedulers_back(ctx, scheduler)
    scheduler.rolling.add("hello.web.web")

    report = await reconcile(_system(ctx))

    assert (report.scaled, report.applied, report.failed) == ([], [], {})
    assert scheduler.jobs["hello.web.web"].num_instances == 1
    scheduler.rolling.clear()
    assert (await reconcile(_system(ctx))).scaled == ["hello.web.web"]


async def test_an_interrupted_deploy_is_finished(
    ctx: OpContext, scheduler: FakeScheduler, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _deployed(ctx)
    # As a console killed between its first transaction and the scheduler calls leaves it.
    async with sessions.begin() as session:
        app = (await session.execute(select(App))).scalar_one()
        app.status = AppStatus.DEPLOYING
    scheduler.jobs.clear()
    report = await reconcile(_system(ctx))
    assert report.finished == ["hello"]
    assert set(scheduler.jobs) == {"hello.web.web", "hello.worker.jobs"}
    assert (await get_app(ctx, name="hello")).status is AppStatus.DEPLOYED


async def test_a_down_scheduler_is_reported_and_healed_next_round(
    ctx: OpContext, scheduler: FakeScheduler
) -> None:
    await _deployed(ctx)
    scheduler.jobs.clear()
    scheduler.down = True
    first = await reconcile(_system(ctx))
    assert first.applied == []
    assert set(first.failed) == {"hello.web.web", "hello.worker.jobs"}
    scheduler.down = False
    second = await reconcile(_system(ctx))
    assert set(second.applied) == {"hello.web.web", "hello.worker.jobs"}


async def test_portal_jobs_are_part_of_the_desired_state(
    ctx: OpContext, scheduler: FakeScheduler
) -> None:
    await _deployed(ctx, "echo-server", SERVICE.replace('"good, also-*"', "good"))
    await _deployed(ctx, "good", client_yaml("good", services=USES_ECHO))
    scheduler.jobs.clear()
    report = await reconcile(_system(ctx))
    assert "echo-server.portal.portal-echo_good" in report.applied


async def test_busy_apps_are_left_for_the_next_round(
    ctx: OpContext, scheduler: FakeScheduler
) -> None:
    await _deployed(ctx)
    scheduler.jobs.clear()
    async with ctx.services.guard.app("hello", "a deploy"):
        report = await reconcile(_system(ctx))
    assert report.skipped == ["hello"]
    assert scheduler.jobs == {}


async def test_a_user_does_not_wait_while_a_round_only_reads_the_app(
    ctx: OpContext, scheduler: FakeScheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _deployed(ctx)
    reading, scaled = asyncio.Event(), asyncio.Event()
    states = scheduler.states

    async def held_up_states(job_ids: Sequence[str]) -> dict[str, ProcState]:
        if not scaled.is_set():
            reading.set()  # the round is reading hello's running state: hold it there
            await scaled.wait()
        return await states(job_ids)

    monkeypatch.setattr(scheduler, "states", held_up_states)
    round_ = asyncio.create_task(reconcile(_system(ctx)))
    await reading.wait()
    # A round that claimed the app while reading would keep this waiting (and then refuse it).
    async with asyncio.timeout(2):
        view = await scale_proc(ctx, app="hello", proc="web", num_instances=2)
    scaled.set()
    report = await round_

    assert view.num_instances == 2
    assert (report.applied, report.scaled, report.skipped) == ([], [], [])
    assert scheduler.jobs["hello.web.web"].num_instances == 2
