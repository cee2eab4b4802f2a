"""Canary rollouts through the GraphQL door, on (fake) Nomad.

`updateApp(input: {canary: {instances: N}})` registers each long-running proc with
Update.Canary: Nomad starts N new instances beside the old ones and waits. Meanwhile the
proc reads as a rollout under way with its canaries awaiting promotion, other operations
on it are refused, the reconciler leaves it alone, and `promoteApp` / `promoteProc` let
Nomad replace the rest. REST keeps LAIN's shapes throughout."""

from __future__ import annotations

from typing import Any

from tests.faults.helpers import Console
from tests.releases import V1, V2

WEB, JOBS = "hello.web.web", "hello.worker.jobs"
PROC_FIELDS = """name rollout health runningReleases
  canary { desired placed healthy promoted autoPromote awaitingPromotion }"""


async def _procs(console: Console) -> dict[str, dict[str, Any]]:
    data = await console.graphql(f'{{ app(name: "hello") {{ procs {{ {PROC_FIELDS} }} }} }}')
    return {proc.pop("name"): proc for proc in data["app"]["procs"]}


async def _v1_with_three_web_instances(console: Console) -> None:
    await console.ok("deployApp", name="hello", metaVersion=V1)
    await console.settle()
    await console.ok("scaleProc", app="hello", proc="web", numInstances=3)
    await console.settle()


def _versions(console: Console) -> dict[str, int]:
    return {job_id: console.fake.job("default", job_id).version for job_id in (WEB, JOBS)}


async def test_canaries_wait_for_promote_app_then_the_rest_is_replaced(console: Console) -> None:
    await _v1_with_three_web_instances(console)

    await console.ok("updateApp", name="hello", metaVersion=V2, canary={"instances": 1})
    await console.settle()

    web = (await _procs(console))["web"]
    assert web == {
        "rollout": "RUNNING",
        "health": "ROLLING",
        "runningReleases": [V1, V2],
        "canary": {
            "desired": 1,
            "placed": 1,
            "healthy": 1,
            "promoted": False,
            "autoPromote": False,
            "awaitingPromotion": True,
        },
    }
    # REST answers in LAIN's shapes: the proc, its pods, nothing of ours added.
    rest = await console.http.get("/api/v1/apps/hello/procs/web/")
    assert rest.status_code == 200
    assert "canary" not in rest.json()["proc"]

    # A canary rollout is on its way, not drift: the reconciler applies nothing over it.
    versions = _versions(console)
    report = await console.reconcile()
    assert (report.applied, report.scaled, report.failed) == ([], [], {})
    assert _versions(console) == versions
    # Other operations wait for the rollout, as during any rollout.
    refused = await console.mutate("scaleProc", app="hello", proc="web", numInstances=4)
    assert [e["code"] for e in refused["errors"]] == ["CONFLICT"]

    await console.ok("promoteApp", "app { name }", name="hello")
    await console.settle()

    procs = await _procs(console)
    for name in ("web", "jobs"):
        assert procs[name] == {
            "rollout": "NONE",
            "health": "HEALTHY",
            "runningReleases": [V2],
            "canary": None,
        }
    assert await console.converged()
    assert (await console.reconcile()).applied == []


async def test_promote_proc_promotes_one_proc_and_leaves_the_other_waiting(
    console: Console,
) -> None:
    await _v1_with_three_web_instances(console)
    await console.ok("updateApp", name="hello", metaVersion=V2, canary={"instances": 1})
    await console.settle()

    await console.ok("promoteProc", "proc { name }", app="hello", proc="web")
    await console.settle()

    procs = await _procs(console)
    assert (procs["web"]["rollout"], procs["web"]["runningReleases"]) == ("NONE", [V2])
    assert procs["jobs"]["rollout"] == "RUNNING"
    assert procs["jobs"]["canary"]["awaitingPromotion"] is True


async def test_promote_with_nothing_to_promote_is_a_conflict_saying_so(console: Console) -> None:
    await _v1_with_three_web_instances(console)

    app = await console.mutate("promoteApp", name="hello")
    proc = await console.mutate("promoteProc", app="hello", proc="web")

    assert app["errors"] == [
        {
            "code": "CONFLICT",
            "field": "name",
            "message": "app hello has no canaries to promote: no rollout with canaries is "
            "under way",
        }
    ]
    [error] = proc["errors"]
    assert error["code"] == "CONFLICT"
    assert (
        "hello.web.web has no rollout with canaries under way; nothing to promote"
        in (error["message"])
    )
    web = (await console.app())["procs"]["web"]
    assert web["lastError"] == ""  # a refused promotion is not the proc's error


async def test_promoting_canaries_not_yet_healthy_is_nomads_conflict(console: Console) -> None:
    await _v1_with_three_web_instances(console)
    await console.ok("updateApp", name="hello", metaVersion=V2, canary={"instances": 1})
    # Not settled: the canary is placed but not running, let alone healthy.

    payload = await console.mutate("promoteProc", app="hello", proc="web")

    [error] = payload["errors"]
    assert error["code"] == "CONFLICT"
    assert 'Task group "web" has 0/1 healthy allocations' in error["message"]
    await console.settle()
    assert (await _procs(console))["web"]["canary"]["awaitingPromotion"] is True


async def test_auto_promote_after_lets_nomad_promote_healthy_canaries(console: Console) -> None:
    await _v1_with_three_web_instances(console)

    await console.ok(
        "updateApp",
        name="hello",
        metaVersion=V2,
        canary={"instances": 2, "autoPromoteAfter": 5},
    )
    with console.fake.lock:
        update = console.fake.jobs[("default", WEB)].spec["Update"]
    assert (update["Canary"], update["AutoPromote"], update["MinHealthyTime"]) == (
        2,
        True,
        5_000_000_000,
    )
    await console.settle()

    procs = await _procs(console)
    assert (procs["web"]["rollout"], procs["web"]["runningReleases"]) == ("NONE", [V2])
    assert await console.converged()


async def test_canaries_out_of_range_are_invalid_naming_the_field(console: Console) -> None:
    await _v1_with_three_web_instances(console)

    payload = await console.mutate(
        "updateApp", name="hello", metaVersion=V2, canary={"instances": 0}
    )

    assert payload["errors"] == [
        {
            "code": "INVALID",
            "field": "canary.instances",
            "message": "canary.instances must be between 1 and 1000, got 0",
        }
    ]
    assert (await console.app())["metaVersion"] == V1


async def test_an_update_drops_canaries_that_wait_and_the_old_release_stays(
    console: Console,
) -> None:
    await _v1_with_three_web_instances(console)
    await console.ok("updateApp", name="hello", metaVersion=V2, canary={"instances": 1})
    await console.settle()
    with console.fake.lock:
        canaries = {
            alloc.id
            for alloc in console.fake.allocs.values()
            if alloc.canary and alloc.desired == "run"
        }
    assert len(canaries) == 2  # one of web, one of jobs

    # Going back is an update like any other, let through while only canaries run V2.
    await console.ok("updateApp", name="hello", metaVersion=V1)
    await console.settle()

    with console.fake.lock:
        assert {console.fake.allocs[alloc_id].desired for alloc_id in canaries} == {"stop"}
        cancelled = [
            d["StatusDescription"]
            for d in console.fake.deployments.values()
            if d["Status"] == "cancelled"
        ]
    assert cancelled == ["Cancelled due to newer version of job"] * 2
    procs = await _procs(console)
    assert (procs["web"]["rollout"], procs["web"]["runningReleases"]) == ("NONE", [V1])
    assert procs["web"]["canary"] is None
    assert await console.converged()


async def test_an_old_instance_whose_slot_a_canary_took_still_counts_as_running(
    console: Console,
) -> None:
    # web runs one instance: its canary takes that instance's number (Nomad's alloc index),
    # so the instance list shows the canary; the old instance still runs and serves, and
    # the proc says so.
    await console.ok("deployApp", name="hello", metaVersion=V1)
    await console.settle()
    await console.ok("updateApp", name="hello", metaVersion=V2, canary={"instances": 1})
    await console.settle()

    data = await console.graphql(
        '{ app(name: "hello") { procs { name runningReleases instances { number release } } } }'
    )
    web = next(proc for proc in data["app"]["procs"] if proc["name"] == "web")
    assert web["instances"] == [{"number": 1, "release": V2}]
    assert web["runningReleases"] == [V1, V2]
