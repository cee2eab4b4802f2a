from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backends.types import EventKind, InstanceAction, SchedulerEvent
from resolvers.apps import deploy_app, update_app
from resolvers.core.context import OpContext
from resolvers.core.errors import BackendUnavailable, Conflict, InvalidInput, NotFound
from resolvers.procs import (
    control_proc,
    deploy_proc,
    get_proc,
    proc_states,
    resize_proc,
    scale_proc,
    undeploy_proc,
)
from resolvers.releases import publish_release
from resolvers.repos import register_repo
from store.models import AuditEntry, Proc
from tests.fakes.scheduler import FakeScheduler
from tests.releases import V1, two_proc_yaml


@pytest.fixture
async def deployed(ctx: OpContext) -> None:
    await register_repo(ctx, name="hello")
    await publish_release(ctx, app="hello", meta_version=V1, lain_yaml=two_proc_yaml())
    await deploy_app(ctx, name="hello")


async def _rows(sessions: async_sessionmaker[AsyncSession]) -> tuple[object, ...]:
    async with sessions() as session:
        procs = tuple(
            (p.name, p.num_instances, p.cpu, p.memory, p.deployed)
            for p in (await session.execute(select(Proc).order_by(Proc.id))).scalars()
        )
        audit = tuple(e.operation for e in (await session.execute(select(AuditEntry))).scalars())
    return procs, audit


pytestmark = pytest.mark.usefixtures("deployed")


class TestScaleProc:
    async def test_scale_proc_sets_the_count_and_audits(
        self,
        ctx: OpContext,
        scheduler: FakeScheduler,
        sessions: async_sessionmaker[AsyncSession],
    ) -> None:
        proc = await scale_proc(ctx, app="hello", proc="web", num_instances=3)
        assert proc.num_instances == 3
        assert scheduler.jobs["hello.web.web"].num_instances == 3
        assert ("scale", "hello.web.web", "3") in scheduler.calls
        async with sessions() as session:
            entry = (
                (await session.execute(select(AuditEntry).order_by(AuditEntry.id.desc())))
                .scalars()
                .first()
            )
        assert entry is not None
        assert (entry.operation, entry.message, entry.meta_version) == (
            "SCALE",
            "web num_instances=3",
            V1,
        )

    @pytest.mark.parametrize("count", [-1, 1001, True, 2.5])
    async def test_scale_proc_invalid_count_changes_nothing(
        self, ctx: OpContext, sessions: async_sessionmaker[AsyncSession], count: object
    ) -> None:
        before = await _rows(sessions)
        with pytest.raises(InvalidInput) as raised:
            await scale_proc(ctx, app="hello", proc="web", num_instances=count)  # type: ignore[arg-type]
        assert raised.value.field == "numInstances"
        assert await _rows(sessions) == before

    @pytest.mark.parametrize(("app", "proc"), [("ghost", "web"), ("hello", "nope")])
    async def test_scale_proc_unknown_app_or_proc_is_not_found(
        self, ctx: OpContext, sessions: async_sessionmaker[AsyncSession], app: str, proc: str
    ) -> None:
        before = await _rows(sessions)
        with pytest.raises(NotFound):
            await scale_proc(ctx, app=app, proc=proc, num_instances=2)
        assert await _rows(sessions) == before

    async def test_scale_proc_backend_down_changes_nothing(
        self,
        ctx: OpContext,
        scheduler: FakeScheduler,
        sessions: async_sessionmaker[AsyncSession],
    ) -> None:
        before = await _rows(sessions)
        scheduler.down = True
        with pytest.raises(BackendUnavailable):
            await scale_proc(ctx, app="hello", proc="web", num_instances=2)
        assert await _rows(sessions) == before

    async def test_scale_proc_while_the_proc_is_busy_is_a_conflict(
        self, ctx: OpContext, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        before = await _rows(sessions)
        async with ctx.services.guard.proc("hello", "web", "a resize"):
            with pytest.raises(Conflict):
                await scale_proc(ctx, app="hello", proc="web", num_instances=2)
        assert await _rows(sessions) == before

    async def test_scale_proc_job_lost_by_the_scheduler_is_reapplied(
        self, ctx: OpContext, scheduler: FakeScheduler
    ) -> None:
        del scheduler.jobs["hello.web.web"]
        await scale_proc(ctx, app="hello", proc="web", num_instances=2)
        assert scheduler.jobs["hello.web.web"].num_instances == 2


class TestResizeProc:
    async def test_resize_proc_sets_cpu_and_memory(
        self, ctx: OpContext, scheduler: FakeScheduler
    ) -> None:
        proc = await resize_proc(ctx, app="hello", proc="web", cpu=2, memory="128m")
        assert (proc.cpu, proc.memory, proc.memory_bytes) == (2, "128m", 128 * 1024**2)
        job = scheduler.jobs["hello.web.web"]
        assert (job.cpu, job.memory_bytes) == (2, 128 * 1024**2)

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({}, "cpu"),
            ({"cpu": 9}, "cpu"),
            ({"cpu": -1}, "cpu"),
            ({"memory": "lots"}, "memory"),
            ({"memory": "2048g"}, "memory"),
        ],
    )
    async def test_resize_proc_invalid_input_changes_nothing(
        self,
        ctx: OpContext,
        sessions: async_sessionmaker[AsyncSession],
        kwargs: dict[str, object],
        field: str,
    ) -> None:
        before = await _rows(sessions)
        with pytest.raises(InvalidInput) as raised:
            await resize_proc(ctx, app="hello", proc="web", **kwargs)  # type: ignore[arg-type]
        assert raised.value.field == field
        assert await _rows(sessions) == before


class TestControlProc:
    async def test_control_proc_restarts_one_instance(
        self, ctx: OpContext, scheduler: FakeScheduler
    ) -> None:
        await control_proc(ctx, app="hello", proc="jobs", action=InstanceAction.RESTART, instance=2)
        assert ("control", "hello.worker.jobs", "restart", "2") in scheduler.calls
        states = await proc_states(ctx, ["hello.worker.jobs"])
        restarts = [i.restarts for i in states["hello.worker.jobs"].instances]
        assert restarts == [0, 1]

    async def test_control_proc_stop_all(self, ctx: OpContext, scheduler: FakeScheduler) -> None:
        await control_proc(ctx, app="hello", proc="jobs", action=InstanceAction.STOP)
        assert scheduler.stopped["hello.worker.jobs"] == {1, 2}

    async def test_control_proc_instance_out_of_range_changes_nothing(
        self, ctx: OpContext, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        before = await _rows(sessions)
        with pytest.raises(InvalidInput, match="there is no instance 3"):
            await control_proc(
                ctx, app="hello", proc="jobs", action=InstanceAction.STOP, instance=3
            )
        assert await _rows(sessions) == before


class TestUndeployAndDeployProc:
    async def test_undeploy_then_deploy_proc(
        self, ctx: OpContext, scheduler: FakeScheduler
    ) -> None:
        proc = await undeploy_proc(ctx, app="hello", proc="jobs")
        assert not proc.deployed
        assert "hello.worker.jobs" not in scheduler.jobs
        assert (await get_proc(ctx, app="hello", proc="jobs")).deployed is False
        with pytest.raises(NotFound, match="not deployed"):
            await scale_proc(ctx, app="hello", proc="jobs", num_instances=1)
        proc = await deploy_proc(ctx, app="hello", proc="jobs")
        assert proc.deployed
        assert scheduler.jobs["hello.worker.jobs"].num_instances == 2

    async def test_deploy_proc_already_deployed_is_a_conflict(self, ctx: OpContext) -> None:
        with pytest.raises(Conflict, match="already deployed"):
            await deploy_proc(ctx, app="hello", proc="web")


async def _rolling(ctx: OpContext, scheduler: FakeScheduler, job_id: str) -> None:
    """The scheduler starts a rollout of `job_id` and its event reaches the bus."""
    scheduler.rolling.add(job_id)
    state = await scheduler.state(job_id)
    ctx.services.bus.publish_scheduler_event(
        SchedulerEvent(cursor=1, kind=EventKind.PROC, job_id=job_id, proc=state)
    )


@pytest.mark.usefixtures("deployed")
async def test_operations_on_a_rolling_proc_are_conflicts_and_store_nothing(
    ctx: OpContext, scheduler: FakeScheduler, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _rolling(ctx, scheduler, "hello.web.web")
    before, calls = await _rows(sessions), len(scheduler.calls)

    for operation in (
        scale_proc(ctx, app="hello", proc="web", num_instances=3),
        resize_proc(ctx, app="hello", proc="web", memory="128m"),
        control_proc(ctx, app="hello", proc="web", action=InstanceAction.RESTART),
        update_app(ctx, name="hello"),
    ):
        with pytest.raises(Conflict, match=r"busy with a rollout of hello\.web\.web"):
            await operation

    assert await _rows(sessions) == before
    assert scheduler.calls[calls:] == []
    # The other proc is not held up, and undeploying the rolling one stops its rollout.
    await scale_proc(ctx, app="hello", proc="jobs", num_instances=2)
    await undeploy_proc(ctx, app="hello", proc="web")
    assert scheduler.calls[-1] == ("remove", "hello.web.web")
