"""NomadScheduler commands and reads against the fake Nomad, stepped by hand. Reads ask
Nomad itself (no event stream: see `reading_nomad`); reads from the stream are in
test_events.py."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from backends.errors import JobNotFound, SchedulerConflict, SchedulerRejected
from backends.nomad import NomadScheduler, NomadSettings
from backends.types import InstanceAction, InstanceState, InstanceStatus
from tests.backends.nomad.helpers import (
    MIB,
    make_job,
    open_scheduler,
    reading_nomad,
    wait_until,
)
from tests.fakes.nomad import FakeNomad
from tests.fakes.nomad_server import FakeNomadServer

JOB_ID = "hello.web.web"
RUNNING = InstanceStatus.RUNNING


@pytest.fixture
async def scheduler(settings: NomadSettings) -> AsyncIterator[NomadScheduler]:
    async with reading_nomad(settings) as unopened:
        yield unopened


def _statuses(instances: tuple[InstanceState, ...]) -> list[tuple[int, InstanceStatus]]:
    return [(i.number, i.status) for i in instances]


def _live_allocs(fake: FakeNomad, job_id: str = JOB_ID) -> list[dict[str, Any]]:
    return [
        a
        for a in fake.allocations_of(job_id)
        if a["DesiredStatus"] == "run" and a["ClientStatus"] in ("pending", "running")
    ]


async def _deployed(scheduler: NomadScheduler, fake: FakeNomad, **changes: Any) -> None:
    await scheduler.apply(make_job(**changes))
    fake.settle()


class TestApply:
    async def test_apply_registers_the_job_and_instances_come_up(
        self, scheduler: NomadScheduler, fake: FakeNomad
    ) -> None:
        await scheduler.apply(make_job(num_instances=2))
        state = await scheduler.state(JOB_ID)
        assert state.exists
        assert _statuses(state.instances) == [
            (1, InstanceStatus.PENDING),
            (2, InstanceStatus.PENDING),
        ]
        fake.settle()
        state = await scheduler.state(JOB_ID)
        assert _statuses(state.instances) == [(1, RUNNING), (2, RUNNING)]
        assert all(i.healthy for i in state.instances)
        assert len({i.port for i in state.instances}) == 2
        assert {i.ip for i in state.instances} == {"127.0.0.1"}
        assert state.spec_hash == make_job().spec_hash()
        assert (state.cpu, state.memory_bytes) == (1, 64 * MIB)

    async def test_apply_same_job_again_changes_nothing(
        self, scheduler: NomadScheduler, fake: FakeNomad
    ) -> None:
        await _deployed(scheduler, fake)
        version, index = fake.job("default", JOB_ID).version, fake.index
        await scheduler.apply(make_job())
        assert fake.job("default", JOB_ID).version == version
        assert fake.settle() == 0
        assert fake.index == index

    async def test_apply_new_image_replaces_instances_one_at_a_time(
        self, scheduler: NomadScheduler, fake: FakeNomad
    ) -> None:
        await _deployed(scheduler, fake)
        await scheduler.apply(make_job(image="registry.lain.local/hello:release-2"))
        unhealthy_new = [
            a for a in _live_allocs(fake) if (a["DeploymentStatus"] or {}).get("Healthy") is None
        ]
        assert len(unhealthy_new) == 1  # MaxParallel 1: one replacement in flight
        fake.settle()
        state = await scheduler.state(JOB_ID)
        assert state.image == "registry.lain.local/hello:release-2"
        assert _statuses(state.instances) == [(1, RUNNING), (2, RUNNING)]

    async def test_apply_sets_the_count_it_is_given(
        self, scheduler: NomadScheduler, fake: FakeNomad
    ) -> None:
        await _deployed(scheduler, fake)
        await scheduler.scale(JOB_ID, 4)
        fake.settle()
        await scheduler.apply(make_job(num_instances=2))
        fake.settle()
        state = await scheduler.state(JOB_ID)
        assert (state.num_instances, len(state.instances)) == (2, 2)

    async def test_apply_refused_by_nomad_is_rejected(self, nomad_server: FakeNomadServer) -> None:
        settings = NomadSettings(address=nomad_server.url, namespace="missing")
        async with reading_nomad(settings) as scheduler:
            with pytest.raises(SchedulerRejected, match='nonexistent namespace "missing"'):
                await scheduler.apply(make_job())

    async def test_apply_after_another_writer_rereads_and_writes_over_it_knowingly(
        self, scheduler: NomadScheduler, fake: FakeNomad
    ) -> None:
        await _deployed(scheduler, fake)
        fake.faults.race_registers(1)
        await scheduler.apply(make_job(image="registry.lain.local/hello:release-2"))
        job = fake.job("default", JOB_ID)
        # The operator's write landed (version 1), then ours on top of it (version 2).
        assert job.version == 2
        assert "edited-by" in job.history[1][0]["Meta"]
        assert "edited-by" not in job.spec["Meta"]

    async def test_apply_racing_twice_is_a_conflict_and_keeps_the_other_write(
        self, scheduler: NomadScheduler, fake: FakeNomad
    ) -> None:
        await _deployed(scheduler, fake)
        fake.faults.race_registers(2)
        with pytest.raises(SchedulerConflict, match="changed meanwhile"):
            await scheduler.apply(make_job(image="registry.lain.local/hello:release-2"))
        job = fake.job("default", JOB_ID)
        assert job.spec["Meta"]["edited-by"]
        assert job.spec["TaskGroups"][0]["Tasks"][0]["Config"]["image"].endswith("release-1")

    async def test_apply_creating_a_job_another_writer_just_created_is_checked_too(
        self, scheduler: NomadScheduler, fake: FakeNomad
    ) -> None:
        fake.faults.race_registers(2)
        with pytest.raises(SchedulerConflict, match="Enforcing job modify index"):
            await scheduler.apply(make_job())

    @pytest.mark.parametrize("version", [(1, 6), (1, 8), (1, 9)])
    async def test_apply_raw_exec_with_a_working_dir_runs_on_nomad_before_1_9(
        self, scheduler: NomadScheduler, fake: FakeNomad, version: tuple[int, int]
    ) -> None:
        fake.client_version = version
        job = make_job(driver="raw_exec", entrypoint=("/app",), working_dir="/srv/hello")
        await scheduler.apply(job)
        fake.settle()
        state = await scheduler.state(JOB_ID)
        assert _statuses(state.instances) == [(1, RUNNING), (2, RUNNING)]
        assert [i.last_error for i in state.instances] == ["", ""]

    async def test_apply_oneshot_runs_to_complete(
        self, scheduler: NomadScheduler, fake: FakeNomad
    ) -> None:
        job = make_job(proc="migrate", proc_type="oneshot", num_instances=1)
        await scheduler.apply(job)
        fake.settle()
        [instance] = (await scheduler.state(job.job_id)).instances
        assert instance.status is InstanceStatus.COMPLETE
        assert instance.exit_code == 0

    async def test_apply_broken_release_is_reverted_and_reported(
        self, scheduler: NomadScheduler, fake: FakeNomad
    ) -> None:
        await _deployed(scheduler, fake)
        broken = "registry.lain.local/hello:release-broken"
        fake.faults.crash_image(broken)
        await scheduler.apply(make_job(image=broken))
        fake.settle()
        state = await scheduler.state(JOB_ID)
        assert "rolling back to job version 0" in state.last_error
        assert state.image == make_job().image  # auto-revert brought the old one back
        assert _statuses(state.instances) == [(1, RUNNING), (2, RUNNING)]


class TestScale:
    async def test_scale_up_and_down_uses_the_scale_endpoint(
        self, scheduler: NomadScheduler, fake: FakeNomad, nomad_server: FakeNomadServer
    ) -> None:
        await _deployed(scheduler, fake)
        await scheduler.scale(JOB_ID, 3)
        fake.settle()
        state = await scheduler.state(JOB_ID)
        assert state.num_instances == 3
        assert _statuses(state.instances) == [(1, RUNNING), (2, RUNNING), (3, RUNNING)]
        await scheduler.scale(JOB_ID, 1)
        fake.settle()
        state = await scheduler.state(JOB_ID)
        assert _statuses(state.instances) == [(1, RUNNING)]
        scale_calls = [s for s in nomad_server.seen if s.path == f"/v1/job/{JOB_ID}/scale"]
        assert len(scale_calls) == 2

    async def test_scale_during_a_deployment_is_a_conflict_and_keeps_the_count(
        self, scheduler: NomadScheduler, fake: FakeNomad
    ) -> None:
        await scheduler.apply(make_job(num_instances=2))  # its deployment is running
        with pytest.raises(SchedulerConflict, match=r"deployment.*retry"):
            await scheduler.scale(JOB_ID, 5)
        assert (await scheduler.state(JOB_ID)).num_instances == 2
        fake.settle()
        await scheduler.scale(JOB_ID, 5)  # the retry, once the deployment is done
        assert (await scheduler.state(JOB_ID)).num_instances == 5

    async def test_scale_unknown_job_is_not_found(self, scheduler: NomadScheduler) -> None:
        with pytest.raises(JobNotFound):
            await scheduler.scale("nope.web.web", 1)

    async def test_scale_negative_is_rejected_before_calling_nomad(
        self, scheduler: NomadScheduler, nomad_server: FakeNomadServer
    ) -> None:
        with pytest.raises(SchedulerRejected):
            await scheduler.scale(JOB_ID, -1)
        assert not [seen for seen in nomad_server.seen if seen.path.endswith("/scale")]


class TestResize:
    async def test_resize_rolls_new_resources_keeping_the_count(
        self, scheduler: NomadScheduler, fake: FakeNomad
    ) -> None:
        await _deployed(scheduler, fake)
        await scheduler.scale(JOB_ID, 3)
        fake.settle()
        await scheduler.resize(JOB_ID, cpu=4, memory_bytes=256 * MIB)
        fake.settle()
        state = await scheduler.state(JOB_ID)
        assert (state.num_instances, state.cpu, state.memory_bytes) == (3, 4, 256 * MIB)
        assert (
            state.spec_hash == make_job().with_resources(cpu=4, memory_bytes=256 * MIB).spec_hash()
        )
        task = fake.job("default", JOB_ID).spec["TaskGroups"][0]["Tasks"][0]
        assert task["Resources"] == {"CPU": 1000, "MemoryMB": 256}
        assert _statuses(state.instances) == [(1, RUNNING), (2, RUNNING), (3, RUNNING)]

    async def test_resize_unknown_job_is_not_found(self, scheduler: NomadScheduler) -> None:
        with pytest.raises(JobNotFound):
            await scheduler.resize("nope.web.web", cpu=1, memory_bytes=MIB)

    async def test_resize_a_job_we_did_not_render_is_rejected(
        self, scheduler: NomadScheduler, fake: FakeNomad
    ) -> None:
        fake.register(
            "default",
            {
                "Job": {
                    "ID": JOB_ID,
                    "TaskGroups": [
                        {
                            "Name": "web",
                            "Tasks": [
                                {"Name": "web", "Driver": "docker", "Config": {"image": "x"}}
                            ],
                        }
                    ],
                }
            },
        )
        with pytest.raises(SchedulerRejected, match="not registered by lain-console"):
            await scheduler.resize(JOB_ID, cpu=1, memory_bytes=MIB)


class TestRemove:
    async def test_remove_purges_the_job(self, scheduler: NomadScheduler, fake: FakeNomad) -> None:
        await _deployed(scheduler, fake)
        await scheduler.remove(JOB_ID)
        assert (await scheduler.state(JOB_ID)).exists is False
        fake.settle()
        assert _live_allocs(fake) == []

    async def test_remove_missing_job_is_fine(self, scheduler: NomadScheduler) -> None:
        await scheduler.remove("nope.web.web")

    async def test_apply_after_remove_starts_afresh(
        self, scheduler: NomadScheduler, fake: FakeNomad
    ) -> None:
        await _deployed(scheduler, fake)
        await scheduler.remove(JOB_ID)
        fake.settle()
        await _deployed(scheduler, fake, num_instances=1)
        state = await scheduler.state(JOB_ID)
        # The purged job's allocations are not this job's instances.
        assert _statuses(state.instances) == [(1, RUNNING)]


class TestControl:
    async def test_restart_one_instance_restarts_it_in_place(
        self, scheduler: NomadScheduler, fake: FakeNomad
    ) -> None:
        await _deployed(scheduler, fake)
        before = (await scheduler.state(JOB_ID)).instances
        await scheduler.control(JOB_ID, InstanceAction.RESTART, 2)
        after = (await scheduler.state(JOB_ID)).instances
        assert [i.restarts for i in after] == [0, 1]
        assert [i.instance_id for i in after] == [i.instance_id for i in before]

    @pytest.mark.parametrize(
        ("count", "kill_timeout", "slow_kill"),
        # The second: Nomad's restart call blocks until the old task is dead, up to its
        # KillTimeout, here twice the client's request timeout.
        [(3, 10, False), (2, 2, True)],
    )
    async def test_restart_all_restarts_every_running_instance_one_after_the_other(
        self,
        settings: NomadSettings,
        nomad_server: FakeNomadServer,
        count: int,
        kill_timeout: int,
        slow_kill: bool,
    ) -> None:
        fake = nomad_server.fake
        async with reading_nomad(settings, restart_poll=0.02) as scheduler:
            await _deployed(scheduler, fake, num_instances=count, kill_timeout=kill_timeout)
            fake.faults.slow_kill = slow_kill
            nomad_server.auto_settle = 0.05  # the cluster moves on by itself now
            await scheduler.control(JOB_ID, InstanceAction.RESTART)
            fake.settle()
            assert [i.restarts for i in (await scheduler.state(JOB_ID)).instances] == [1] * count
        # Each restart was asked for only once every earlier one was running again.
        assert len(fake.restarts) == count
        for alloc_id, statuses in fake.restarts:
            assert statuses == dict.fromkeys(statuses, "running"), alloc_id

    async def test_restart_all_stops_at_an_instance_that_does_not_come_back(
        self, settings: NomadSettings, nomad_server: FakeNomadServer
    ) -> None:
        fake = nomad_server.fake
        async with reading_nomad(settings, restart_poll=0.02) as scheduler:
            await _deployed(scheduler, fake, num_instances=2)
            first = _live_allocs(fake)[0]["ID"]

            async def crash_after_restart() -> None:
                await wait_until(lambda: bool(fake.restarts), message="the first restart")
                with fake.lock:
                    fake._crash(fake.allocs[first])

            async with anyio.create_task_group() as group:
                group.start_soon(crash_after_restart)
                with pytest.raises(
                    SchedulerConflict, match=r"instance 1 of hello\.web\.web stopped"
                ):
                    await scheduler.control(JOB_ID, InstanceAction.RESTART)
        assert [alloc_id for alloc_id, _ in fake.restarts] == [first]

    async def test_stop_all_stops_the_job_but_keeps_its_count(
        self, scheduler: NomadScheduler, fake: FakeNomad
    ) -> None:
        await _deployed(scheduler, fake)
        await scheduler.control(JOB_ID, InstanceAction.STOP)
        fake.settle()
        state = await scheduler.state(JOB_ID)
        assert state.num_instances == 2
        assert _statuses(state.instances) == [
            (1, InstanceStatus.EXITED),
            (2, InstanceStatus.EXITED),
        ]
        assert fake.job("default", JOB_ID).stopped

    async def test_start_all_after_stop_runs_the_same_spec_again(
        self, scheduler: NomadScheduler, fake: FakeNomad
    ) -> None:
        await _deployed(scheduler, fake)
        await scheduler.scale(JOB_ID, 3)
        fake.settle()
        await scheduler.control(JOB_ID, InstanceAction.STOP)
        fake.settle()
        await scheduler.control(JOB_ID, InstanceAction.START)
        fake.settle()
        state = await scheduler.state(JOB_ID)
        assert _statuses(state.instances) == [(1, RUNNING), (2, RUNNING), (3, RUNNING)]
        assert state.spec_hash == make_job().spec_hash()
        assert not fake.job("default", JOB_ID).stopped

    async def test_stop_one_instance_is_refused_explaining_why(
        self, scheduler: NomadScheduler, fake: FakeNomad
    ) -> None:
        await _deployed(scheduler, fake)
        with pytest.raises(SchedulerRejected, match="cannot keep one instance"):
            await scheduler.control(JOB_ID, InstanceAction.STOP, 1)
        assert len(_live_allocs(fake)) == 2

    async def test_start_one_instance_of_a_stopped_job_is_refused(
        self, scheduler: NomadScheduler, fake: FakeNomad
    ) -> None:
        await _deployed(scheduler, fake)
        await scheduler.control(JOB_ID, InstanceAction.STOP)
        with pytest.raises(SchedulerRejected, match="is stopped"):
            await scheduler.control(JOB_ID, InstanceAction.START, 1)

    async def test_start_one_failed_instance_reschedules_it(
        self, scheduler: NomadScheduler, fake: FakeNomad
    ) -> None:
        image = "registry.lain.local/hello:flaky"
        job = make_job(proc="foo", proc_type="worker", num_instances=1, image=image)
        fake.faults.crash_image(image)
        await scheduler.apply(job)
        fake.settle()
        [failed] = (await scheduler.state(job.job_id)).instances
        assert failed.status is InstanceStatus.FAILED
        assert failed.exit_code == 1
        assert "Exceeded allowed attempts" in failed.last_error
        fake.faults.crashing_images.clear()
        await scheduler.control(job.job_id, InstanceAction.START, 1)
        fake.settle()
        [started] = (await scheduler.state(job.job_id)).instances
        assert started.status is RUNNING
        assert started.instance_id != failed.instance_id

    async def test_start_a_running_instance_does_nothing(
        self, scheduler: NomadScheduler, fake: FakeNomad
    ) -> None:
        await _deployed(scheduler, fake)
        index = fake.index
        await scheduler.control(JOB_ID, InstanceAction.START, 1)
        assert fake.index == index

    @pytest.mark.parametrize("instance", [0, 3])
    async def test_control_unknown_instance_is_rejected(
        self, scheduler: NomadScheduler, fake: FakeNomad, instance: int
    ) -> None:
        await _deployed(scheduler, fake)
        with pytest.raises(SchedulerRejected, match="instance"):
            await scheduler.control(JOB_ID, InstanceAction.RESTART, instance)

    async def test_control_unknown_job_is_not_found(self, scheduler: NomadScheduler) -> None:
        with pytest.raises(JobNotFound):
            await scheduler.control("nope.web.web", InstanceAction.RESTART)


class TestReads:
    async def test_state_of_a_missing_job_does_not_exist(self, scheduler: NomadScheduler) -> None:
        state = await scheduler.state("nope.web.web")
        assert state.exists is False
        assert state.job_id == "nope.web.web"

    async def test_states_reads_many_jobs_in_few_calls(
        self, settings: NomadSettings, fake: FakeNomad, nomad_server: FakeNomadServer
    ) -> None:
        scheduler = NomadScheduler(settings)  # not opened: no event stream adds its calls
        jobs = [make_job(app=f"app{i}", num_instances=i + 1) for i in range(3)]
        for job in jobs:
            await scheduler.apply(job)
        fake.settle()
        nomad_server.seen.clear()
        ids = [job.job_id for job in jobs] + ["nope.web.web"]
        states = await scheduler.states(ids)
        assert list(states) == ids
        assert [len(states[job.job_id].instances) for job in jobs] == [1, 2, 3]
        assert states["nope.web.web"].exists is False
        lists = [s.path for s in nomad_server.seen if not s.path.startswith("/v1/job/")]
        assert sorted(lists) == ["/v1/allocations", "/v1/deployments"]

    async def test_state_asks_the_checks_of_instances_no_deployment_judged(
        self, scheduler: NomadScheduler, fake: FakeNomad
    ) -> None:
        await _deployed(scheduler, fake, num_instances=1)
        with fake.lock:
            for alloc in fake.allocs.values():
                alloc.doc["DeploymentStatus"] = None  # as after a reschedule
        [instance] = (await scheduler.state(JOB_ID)).instances
        assert instance.healthy is True

    async def test_env_is_the_instances_environment(
        self, scheduler: NomadScheduler, fake: FakeNomad
    ) -> None:
        await _deployed(scheduler, fake, num_instances=1)
        [instance] = (await scheduler.state(JOB_ID)).instances
        assert instance.env == ("LAIN_APPNAME=hello", "TZ=Asia/Shanghai")

    async def test_health_reports_the_leader(
        self, scheduler: NomadScheduler, nomad_server: FakeNomadServer
    ) -> None:
        health = await scheduler.health()
        assert health.ok
        assert "leader 127.0.0.1:4647" in health.detail

    async def test_health_never_raises_when_nomad_is_down(
        self, scheduler: NomadScheduler, nomad_server: FakeNomadServer
    ) -> None:
        nomad_server.faults.refuse_connections()
        health = await scheduler.health()
        assert not health.ok
        assert "unreachable" in health.detail


class TestLifecycle:
    async def test_closed_scheduler_refuses_calls(self, settings: NomadSettings) -> None:
        scheduler = open_scheduler(settings)
        async with scheduler:
            pass
        with pytest.raises(RuntimeError, match="closed"):
            await scheduler.apply(make_job())
        with pytest.raises(RuntimeError, match="cannot be opened again"):
            await scheduler.__aenter__()

    def test_bad_options_are_refused(self, settings: NomadSettings) -> None:
        with pytest.raises(ValueError, match="default_driver"):
            NomadScheduler(settings, default_driver="podman")
        with pytest.raises(ValueError, match="cpu_mhz_per_unit"):
            NomadScheduler(settings, cpu_mhz_per_unit=0)

    async def test_default_driver_runs_procs_without_a_driver(
        self, settings: NomadSettings, fake: FakeNomad
    ) -> None:
        job = dataclasses.replace(make_job(), driver="")
        async with reading_nomad(settings, default_driver="raw_exec") as scheduler:
            await scheduler.apply(job)
            assert (await scheduler.state(JOB_ID)).spec_hash == job.spec_hash()
        task = fake.job("default", JOB_ID).spec["TaskGroups"][0]["Tasks"][0]
        assert task["Driver"] == "raw_exec"
