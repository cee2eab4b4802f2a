"""Scaling while Nomad runs a deployment of the proc.

When the console has seen the deployment (its events say the proc is rolling out), the
mutation answers CONFLICT before anything is stored. When Nomad refuses one the console
has not seen yet, the mutation answers CONFLICT and the stored count goes back to what it
was, so the answer and the stored state agree and the reconciler never applies the refused
count later behind the user's back. The same request goes through once the deployment is
over."""

from __future__ import annotations

from tests.faults.helpers import Console
from tests.releases import V1

REFUSED = (
    "Nomad refused to scale job hello.web.web to 3: a deployment of the job is still "
    "running (job scaling blocked due to active deployment); retry when it has finished"
)


async def test_scale_during_a_deployment_the_console_has_seen_stores_nothing(
    console: Console,
) -> None:
    await console.ok("deployApp", name="hello", metaVersion=V1)
    # Not settled: web's first deployment is still waiting for a healthy instance.
    with console.fake.lock:
        web = [d for d in console.fake.deployments.values() if d["JobID"] == "hello.web.web"]
    assert [d["Status"] for d in web] == ["running"]
    await console.until_rolling("web")

    payload = await console.mutate(
        "scaleProc", "proc { numInstances lastError }", app="hello", proc="web", numInstances=3
    )

    [error] = payload["errors"]
    assert error["code"] == "CONFLICT"
    assert "busy with a rollout of hello.web.web" in error["message"]
    web = (await console.app())["procs"]["web"]
    assert (web["numInstances"], web["lastError"]) == (1, "")
    await console.settle()
    assert await console.converged()


async def test_scale_refused_by_nomad_is_a_conflict_and_changes_nothing(
    console: Console,
) -> None:
    await console.ok("deployApp", name="hello", metaVersion=V1)
    await console.settle()
    console.nomad.faults.deployment_running = True

    payload = await console.mutate(
        "scaleProc", "proc { numInstances lastError }", app="hello", proc="web", numInstances=3
    )

    assert payload["errors"] == [{"code": "CONFLICT", "field": None, "message": REFUSED}]
    web = (await console.app())["procs"]["web"]
    assert (web["numInstances"], web["lastError"]) == (1, "")
    assert console.nomad_jobs()["hello.web.web"].count == 1

    # Nothing is left for the reconciler to apply, during the deployment or after it.
    report = await console.reconcile()
    assert (report.scaled, report.failed) == ([], {})
    console.nomad.faults.deployment_running = False
    report = await console.reconcile()
    assert (report.scaled, report.failed) == ([], {})
    assert console.nomad_jobs()["hello.web.web"].count == 1
    assert await console.converged()

    # Asked again once the deployment is over, it is done.
    payload = await console.mutate(
        "scaleProc", "proc { numInstances lastError }", app="hello", proc="web", numInstances=3
    )
    assert payload["errors"] == []
    assert payload["proc"] == {"numInstances": 3, "lastError": ""}
    await console.settle()
    procs = await console.graphql(
        '{ app(name: "hello") { procs { name instances { number status healthy } } } }'
    )
    web_instances = next(p for p in procs["app"]["procs"] if p["name"] == "web")["instances"]
    assert web_instances == [{"number": n, "status": "RUNNING", "healthy": True} for n in (1, 2, 3)]
