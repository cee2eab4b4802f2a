"""GraphQL mutations while Nomad fails: the answer is BACKEND_UNAVAILABLE in plain words,
the desired state is either untouched (the health check caught the fault) or kept (the
fault hit the scheduler call), and one reconciler round makes Nomad hold exactly the
desired jobs once the fault is gone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from resolvers.reconcile import ReconcileReport
from tests.faults.helpers import DOWN_FAULTS, Console, assert_clear, switch_off, switch_on
from tests.releases import V1, V2


@dataclass(frozen=True)
class Mutation:
    name: str
    field: str
    fields: dict[str, Any]
    deployed_first: bool = True

    async def run(self, console: Console) -> dict[str, Any]:
        return await console.mutate(self.field, **self.fields)


MUTATIONS = [
    Mutation("deployApp", "deployApp", {"name": "hello", "metaVersion": V1}, deployed_first=False),
    Mutation("scaleProc", "scaleProc", {"app": "hello", "proc": "web", "numInstances": 3}),
    Mutation("resizeProc", "resizeProc", {"app": "hello", "proc": "web", "memory": "128m"}),
    Mutation("updateApp", "updateApp", {"name": "hello", "metaVersion": V2}),
]


async def _deploy(console: Console) -> None:
    await console.ok("deployApp", name="hello", metaVersion=V1)
    await console.settle()  # the deployment ends, so nothing refuses a scale for being busy


@pytest.mark.parametrize("fault", DOWN_FAULTS)
@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
async def test_mutation_while_nomad_is_down_is_unavailable_and_changes_nothing(
    console: Console, mutation: Mutation, fault: str
) -> None:
    if mutation.deployed_first:
        await _deploy(console)
    desired, running = await console.app(), console.nomad_jobs()

    pattern = switch_on(console.nomad, fault)
    payload = await mutation.run(console)

    [error] = payload["errors"]
    assert (error["code"], error["field"]) == ("BACKEND_UNAVAILABLE", None)
    assert error["message"].startswith("the scheduler is unavailable: Nomad at ")
    assert_clear(error["message"], nomad_url=console.nomad.url, pattern=pattern)
    assert await console.app() == desired
    assert console.nomad_jobs() == running

    switch_off(console.nomad)
    report = await console.reconcile()
    assert (report.failed, report.applied, report.scaled) == ({}, [], [])
    assert await console.converged()
    # The same request goes through once Nomad is back.
    assert (await mutation.run(console))["errors"] == []
    assert await console.converged()


@dataclass(frozen=True)
class MidFault:
    mutation: Mutation
    what: str  # the Nomad call that fails, as the message names it
    stored: dict[str, Any]  # the desired state the mutation wrote (procs by name)
    healed: str  # what the reconciler does about it: "applied" or "scaled"


MID_FAULTS = [
    MidFault(MUTATIONS[1], "scale job hello.web.web to 3", {"numInstances": 3}, "scaled"),
    MidFault(MUTATIONS[2], "read job hello.web.web", {"memory": "128m"}, "applied"),
    # A deploy reads the job first: its register is a check-and-set on what it read.
    MidFault(MUTATIONS[3], "read job hello.web.web", {}, "applied"),
]


@pytest.mark.parametrize("case", MID_FAULTS, ids=[c.mutation.name for c in MID_FAULTS])
async def test_fault_after_the_health_check_keeps_the_desired_state_and_the_reconciler_applies_it(
    console: Console, case: MidFault
) -> None:
    await _deploy(console)
    before = console.nomad_jobs()
    # The health check passes; the first call that does the work answers 500.
    console.nomad.faults.fail_next(1, after=1)

    payload = await case.mutation.run(console)

    [error] = payload["errors"]
    assert error["code"] == "BACKEND_UNAVAILABLE"
    assert_clear(
        error["message"],
        nomad_url=console.nomad.url,
        pattern=f"answered 500 to {case.what}: fake: injected server error",
    )
    app = await console.app()
    web = app["procs"]["web"]
    assert {key: web[key] for key in case.stored} == case.stored  # kept, not lost
    assert case.what in web["lastError"]
    if case.mutation.field == "updateApp":
        assert app["metaVersion"] == V2
        assert app["status"] == "DEPLOYED"
        assert app["deployError"].startswith("hello.web.web: Nomad at ")
        # The other proc was updated; only web still runs the old spec.
        assert console.nomad_jobs()["hello.web.web"] == before["hello.web.web"]
    else:
        assert console.nomad_jobs() == before
    assert not await console.converged()

    report = await console.reconcile()

    assert report.failed == {}
    assert getattr(report, case.healed) == ["hello.web.web"]
    assert await console.converged()
    assert (await console.reconcile()).applied == []  # and nothing more to do


async def test_first_deploy_failing_midway_is_undone_and_can_be_retried(console: Console) -> None:
    # Health check, web read and registered, jobs read, then jobs refused: web must go again.
    console.nomad.faults.fail_next(1, after=4)

    payload = await console.mutate("deployApp", name="hello", metaVersion=V1)

    [error] = payload["errors"]
    assert error["code"] == "BACKEND_UNAVAILABLE"
    assert error["message"].startswith("deploy of hello failed: hello.worker.jobs: Nomad at ")
    assert_clear(
        error["message"],
        nomad_url=console.nomad.url,
        pattern="answered 500 to register job hello.worker.jobs",
    )
    app = await console.app()
    assert (app["metaVersion"], app["status"], app["procs"]) == (None, "UNDEPLOYED", {})
    assert "hello.worker.jobs" in app["deployError"]
    assert console.nomad_jobs() == {}
    assert await console.reconcile() == ReconcileReport()

    await console.ok("deployApp", name="hello", metaVersion=V1)
    assert await console.converged()
    assert set(console.nomad_jobs()) == {"hello.web.web", "hello.worker.jobs"}


async def test_jobs_an_undeploy_could_not_remove_are_removed_by_the_reconciler(
    console: Console,
) -> None:
    await _deploy(console)
    console.nomad.faults.fail_next(1, after=1)  # the purge of hello.web.web

    payload = await console.mutate("undeployApp", name="hello")

    [error] = payload["errors"]
    assert error["code"] == "BACKEND_UNAVAILABLE"
    assert error["message"].startswith("undeploy of hello incomplete: hello.web.web: Nomad at ")
    assert (await console.app())["status"] == "UNDEPLOYED"
    await console.reconcile()
    assert console.nomad_jobs() == {}


async def test_jobs_a_failed_first_deploy_could_not_roll_back_are_removed_by_the_reconciler(
    console: Console,
) -> None:
    # Health check, web registered, then jobs refused and the purge of web refused too.
    console.nomad.faults.fail_next(2, after=2)

    payload = await console.mutate("deployApp", name="hello", metaVersion=V1)

    assert payload["errors"][0]["code"] == "BACKEND_UNAVAILABLE"
    assert (await console.app())["status"] == "UNDEPLOYED"
    await console.reconcile()
    assert console.nomad_jobs() == {}


@pytest.mark.parametrize("case", [MID_FAULTS[0], MID_FAULTS[2]], ids=["scaleProc", "updateApp"])
async def test_the_reconciler_clears_the_error_it_healed(console: Console, case: MidFault) -> None:
    await _deploy(console)
    console.nomad.faults.fail_next(1, after=1)
    assert (await case.mutation.run(console))["errors"]

    await console.reconcile()

    assert await console.converged()
    app = await console.app()
    assert app["deployError"] == ""
    assert app["procs"]["web"]["lastError"] == ""
