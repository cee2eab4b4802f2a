"""Canary rollouts on Nomad: ProcJob.canary becomes Update.Canary, the canaries run beside
the old instances until `promote()` (or Nomad's auto-promote), and the fake Nomad answers
promotions as Nomad's source does. Reads ask Nomad itself (see `reading_nomad`)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from backends.errors import JobNotFound, SchedulerConflict
from backends.nomad import NomadScheduler, NomadSettings
from backends.nomad.jobs import render_job
from backends.types import Canary, CanaryState, ProcJob, RolloutStatus
from tests.backends.nomad.helpers import make_job, reading_nomad
from tests.fakes.nomad import FakeNomad

JOB_ID = "hello.web.web"
V1 = "registry.lain.local/hello:release-1"
V2 = "registry.lain.local/hello:release-2"
SECOND = 1_000_000_000


@pytest.fixture
async def scheduler(settings: NomadSettings) -> AsyncIterator[NomadScheduler]:
    async with reading_nomad(settings) as unopened:
        yield unopened


def _images(fake: FakeNomad) -> list[tuple[str, bool]]:
    """(image, canary) of the live allocations, by name then age."""
    live = [
        a
        for a in fake.allocations_of(JOB_ID)
        if a["DesiredStatus"] == "run" and a["ClientStatus"] in ("pending", "running")
    ]
    allocs = sorted(live, key=lambda a: (a["Name"], a["CreateIndex"]))
    with fake.lock:
        return [(fake.allocs[a["ID"]].image, fake.allocs[a["ID"]].canary) for a in allocs]


def _deployment(fake: FakeNomad) -> dict[str, Any]:
    with fake.lock:
        latest = fake.latest_deployment(fake.job("default", JOB_ID))
        assert latest is not None
        return dict(latest)


async def _running_v1(scheduler: NomadScheduler, fake: FakeNomad, count: int = 3) -> None:
    await scheduler.apply(make_job(num_instances=count, image=V1))
    fake.settle()


def _v2(canary: Canary | None, count: int = 3) -> ProcJob:
    return make_job(num_instances=count, image=V2, canary=canary)


def test_render_canaries_wait_for_a_promotion_and_are_left_out_of_the_spec() -> None:
    job = _v2(Canary(instances=2))
    update = render_job(job, namespace="default")["Update"]
    assert (update["Canary"], update["AutoPromote"]) == (2, False)
    assert update["MinHealthyTime"] == 10 * SECOND  # the proc's own (setup_time or 10 s)
    # How one register rolls out is not the proc: no drift for the reconciler, and a later
    # resize or start (re-rendered from the Meta spec) rolls out plainly.
    assert job.spec_hash() == _v2(None).spec_hash()
    assert '"canary"' not in render_job(job, namespace="default")["Meta"]["lain-spec"]


def test_render_auto_promote_after_is_the_min_healthy_time() -> None:
    update = render_job(_v2(Canary(instances=1, auto_promote_after=30)), namespace="default")[
        "Update"
    ]
    assert (update["Canary"], update["AutoPromote"]) == (1, True)
    assert update["MinHealthyTime"] == 30 * SECOND
    assert update["MinHealthyTime"] < update["HealthyDeadline"] < update["ProgressDeadline"]


async def test_canaries_run_beside_the_old_instances_until_promoted(
    scheduler: NomadScheduler, fake: FakeNomad
) -> None:
    await _running_v1(scheduler, fake)

    await scheduler.apply(_v2(Canary(instances=1)))
    fake.settle()

    # One canary of the new version, every old instance still running: the rest waits.
    assert sorted(_images(fake)) == [(V1, False), (V1, False), (V1, False), (V2, True)]
    deployment = _deployment(fake)
    group = deployment["TaskGroups"]["web"]
    assert deployment["Status"] == "running"
    assert deployment["StatusDescription"] == (
        "Deployment is running but requires manual promotion"
    )
    assert (group["DesiredCanaries"], len(group["PlacedCanaries"]), group["Promoted"]) == (
        1,
        1,
        False,
    )
    assert group["HealthyAllocs"] == 1
    state = await scheduler.state(JOB_ID)
    assert state.rollout is RolloutStatus.RUNNING
    assert state.canary == CanaryState(
        desired=1, placed=1, healthy=1, promoted=False, auto_promote=False
    )
    assert state.canary.awaiting_promotion

    await scheduler.promote(JOB_ID)
    fake.settle()

    # The canary took its old instance's place; the others were replaced one at a time.
    assert _images(fake) == [(V2, True), (V2, False), (V2, False)]
    assert _deployment(fake)["Status"] == "successful"
    state = await scheduler.state(JOB_ID)
    assert (state.rollout, state.canary, state.image) == (RolloutStatus.NONE, None, V2)
    assert len(state.instances) == 3


async def test_nomad_promotes_by_itself_once_the_canaries_are_healthy(
    scheduler: NomadScheduler, fake: FakeNomad
) -> None:
    await _running_v1(scheduler, fake)

    await scheduler.apply(_v2(Canary(instances=2, auto_promote_after=1)))
    deployment = _deployment(fake)
    assert deployment["StatusDescription"] == "Deployment is running pending automatic promotion"
    fake.settle()

    assert _images(fake) == [(V2, True), (V2, True), (V2, False)]
    assert _deployment(fake)["TaskGroups"]["web"]["Promoted"] is True
    assert (await scheduler.state(JOB_ID)).rollout is RolloutStatus.NONE


async def test_promoting_without_canaries_is_a_conflict_saying_so(
    scheduler: NomadScheduler, fake: FakeNomad
) -> None:
    await _running_v1(scheduler, fake)
    with pytest.raises(SchedulerConflict, match="no rollout with canaries under way"):
        await scheduler.promote(JOB_ID)
    # A plain rolling update under way has nothing to promote either.
    await scheduler.apply(_v2(None))
    with pytest.raises(SchedulerConflict, match="no rollout with canaries under way"):
        await scheduler.promote(JOB_ID)
    with pytest.raises(JobNotFound):
        await scheduler.promote("hello.web.missing")


async def test_promoting_canaries_not_yet_healthy_is_nomads_conflict(
    scheduler: NomadScheduler, fake: FakeNomad
) -> None:
    await _running_v1(scheduler, fake)
    await scheduler.apply(_v2(Canary(instances=1)))  # placed, not yet running

    with pytest.raises(SchedulerConflict, match=r'Task group "web" has 0/1 healthy allocations'):
        await scheduler.promote(JOB_ID)

    assert _deployment(fake)["TaskGroups"]["web"]["Promoted"] is False


async def test_promoting_twice_says_the_rest_is_being_replaced(
    scheduler: NomadScheduler, fake: FakeNomad
) -> None:
    await _running_v1(scheduler, fake)
    await scheduler.apply(_v2(Canary(instances=1)))
    fake.settle()
    await scheduler.promote(JOB_ID)
    with pytest.raises(SchedulerConflict, match="promoted already"):
        await scheduler.promote(JOB_ID)


async def test_a_failing_canary_fails_the_rollout_and_nomad_reverts(
    scheduler: NomadScheduler, fake: FakeNomad
) -> None:
    await _running_v1(scheduler, fake)
    fake.faults.crash_image(V2)

    await scheduler.apply(_v2(Canary(instances=1)))
    fake.settle()

    # Only the canary was ever at risk: every old instance kept running.
    assert _images(fake) == [(V1, False), (V1, False), (V1, False)]
    state = await scheduler.state(JOB_ID)
    assert state.canary is None
    assert "Failed due to unhealthy allocations" in state.last_error


async def test_a_first_deploy_with_canaries_places_every_instance(
    scheduler: NomadScheduler, fake: FakeNomad
) -> None:
    # Nomad places canaries only beside allocations to replace (requiresCanaries).
    await scheduler.apply(_v2(Canary(instances=1)))
    fake.settle()
    assert _images(fake) == [(V2, False)] * 3
    assert (await scheduler.state(JOB_ID)).rollout is RolloutStatus.NONE


class TestFakePromoteEndpoint:
    """The agent's and the server's answers (command/agent/deployment_endpoint.go,
    nomad/deployment_endpoint.go), which `promote()` maps."""

    async def test_body_must_name_the_deployment(
        self, scheduler: NomadScheduler, fake: FakeNomad, settings: NomadSettings
    ) -> None:
        async with httpx.AsyncClient(base_url=settings.address) as http:
            missing = await http.put("/v1/deployment/promote/abc", json={"All": True})
            other = await http.put(
                "/v1/deployment/promote/abc", json={"DeploymentID": "xyz", "All": True}
            )
            unknown = await http.put(
                "/v1/deployment/promote/abc", json={"DeploymentID": "abc", "All": True}
            )
        assert (missing.status_code, missing.text) == (400, "DeploymentID must be specified")
        assert (other.status_code, other.text) == (400, "Deployment ID does not match")
        assert (unknown.status_code, unknown.text) == (500, "deployment not found")

    async def test_a_finished_deployment_cannot_be_promoted(
        self, scheduler: NomadScheduler, fake: FakeNomad, settings: NomadSettings
    ) -> None:
        await _running_v1(scheduler, fake)
        deployment_id = _deployment(fake)["ID"]
        async with httpx.AsyncClient(base_url=settings.address) as http:
            answer = await http.post(
                f"/v1/deployment/promote/{deployment_id}",
                json={"DeploymentID": deployment_id, "All": True},
            )
        assert (answer.status_code, answer.text) == (500, "can't promote terminal deployment")


def test_canary_survives_proc_job_round_trips() -> None:
    job = _v2(Canary(instances=2, auto_promote_after=5))
    again = ProcJob.from_dict(dataclasses.asdict(job))
    assert again == job
