"""The /api/v1 front door while Nomad fails, in LAIN's words (COMPAT 1.6 and 3.11): a
mutating endpoint refuses with deployd's 503 "maintain state" before anything is stored;
a failure of the scheduler call itself is relayed in a 500; either way the reconciler
leaves Nomad holding exactly the desired jobs."""

from __future__ import annotations

import pytest

from tests.faults.helpers import DOWN_FAULTS, Console, switch_off, switch_on
from tests.releases import V1

WEB = "/api/v1/apps/hello/procs/web/"
MAINTAIN = {
    "app": None,
    "msg": "deployd is now in maintain state, please wait for a while",
    "url": "/v1/apps/",
}


async def _deploy(console: Console) -> None:
    await console.ok("deployApp", name="hello", metaVersion=V1)
    await console.settle()


@pytest.mark.parametrize("fault", DOWN_FAULTS)
async def test_patch_proc_while_nomad_is_down_is_503_and_changes_nothing(
    console: Console, fault: str
) -> None:
    await _deploy(console)
    desired, running = await console.app(), console.nomad_jobs()
    switch_on(console.nomad, fault)

    response = await console.http.patch(WEB, json={"num_instances": 2})

    assert response.status_code == 503
    assert response.json() == MAINTAIN
    assert await console.app() == desired
    assert console.nomad_jobs() == running

    switch_off(console.nomad)
    assert (await console.reconcile()).failed == {}
    assert await console.converged()
    response = await console.http.patch(WEB, json={"num_instances": 2})
    assert response.status_code == 202, response.text
    assert console.nomad_jobs()["hello.web.web"].count == 2


def _requests_before_the_scale(console: Console) -> int:
    paths = [(seen.method, seen.path) for seen in console.nomad.seen]
    return paths.index(("POST", "/v1/job/hello.web.web/scale"))


async def test_patch_proc_failing_at_the_scale_call_is_relayed_in_a_500(console: Console) -> None:
    await _deploy(console)
    # The route reads the app's state before it scales; count those reads on a request
    # that changes nothing, so the 500 lands on the scale call itself.
    console.nomad.seen.clear()
    assert (await console.http.patch(WEB, json={"num_instances": 1})).status_code == 202
    console.nomad.faults.fail_next(1, after=_requests_before_the_scale(console))
    console.nomad.seen.clear()

    response = await console.http.patch(WEB, json={"num_instances": 2})

    body = response.json()
    assert response.status_code == 500
    assert body["msg"] == (
        "    status_code: 500\n"
        f"    message: Nomad at {console.nomad.url} answered 500 to scale job hello.web.web "
        "to 2: fake: injected server error"
    )
    assert body["url"] == "/v1/apps/hello/procs/web/"
    # The proc as Nomad runs it (LAIN's "fresh status"); the desired count is kept.
    assert body["proc"]["numinstances"] == 1
    assert console.nomad_jobs()["hello.web.web"].count == 1
    assert (await console.app())["procs"]["web"]["numInstances"] == 2

    report = await console.reconcile()
    assert report.scaled == ["hello.web.web"]
    assert await console.converged()


async def test_patch_proc_during_a_deployment_relays_the_conflict_in_a_500(
    console: Console,
) -> None:
    await _deploy(console)
    console.nomad.faults.deployment_running = True

    response = await console.http.patch(WEB, json={"num_instances": 2})

    assert response.status_code == 500
    assert response.json()["msg"] == (
        "    status_code: 423\n"
        "    message: Nomad refused to scale job hello.web.web to 2: a deployment of the job "
        "is still running (job scaling blocked due to active deployment); retry when it has "
        "finished"
    )
    # Refused, so nothing changed: not in Nomad, not in the stored count.
    assert (await console.app())["procs"]["web"]["numInstances"] == 1
    console.nomad.faults.deployment_running = False
    assert (await console.reconcile()).scaled == []
    assert await console.converged()
    assert console.nomad_jobs()["hello.web.web"].count == 1
