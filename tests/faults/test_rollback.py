"""Releases Nomad cannot run as asked.

A release whose rollout fails on Nomad: Nomad's auto-revert puts the last stable version
back (Update.AutoRevert, nomad/deploymentwatcher), and the console must not undo that. The
release is marked failed on the proc, on both doors, and the reconciler leaves the
reverted version running until a user deploys again. A lain.yaml field Nomad cannot honour
fails the deploy, naming the field, instead of being dropped."""

from __future__ import annotations

from store import queries
from tests.faults.helpers import Console
from tests.releases import V1, V2, V3, two_proc_yaml

WEB, JOBS = "hello.web.web", "hello.worker.jobs"


def _image(console: Console, job_id: str) -> str:
    with console.fake.lock:
        task = console.fake.jobs[("default", job_id)].spec["TaskGroups"][0]["Tasks"][0]
        return str(task["Config"]["image"])


async def test_a_release_nomad_rolled_back_is_marked_failed_and_not_applied_again(
    console: Console,
) -> None:
    await console.ok("deployApp", name="hello", metaVersion=V1)
    await console.settle()
    stable = console.nomad_jobs()

    await console.ok("updateApp", name="hello", metaVersion=V2)
    broken = _image(console, WEB)
    console.fake.faults.crash_image(broken)
    await console.settle()
    # Both procs run the app's image: Nomad failed both deployments and registered V1's
    # specs again.
    assert console.nomad_jobs() == stable
    versions = [console.fake.job("default", job_id).version for job_id in (WEB, JOBS)]

    for _ in range(2):  # the mark is stored: later rounds hold back too, quietly
        report = await console.reconcile()
        assert (report.applied, report.failed) == ([], {})
        assert sorted(report.held) == [WEB, JOBS]
    assert [console.fake.job("default", job_id).version for job_id in (WEB, JOBS)] == versions
    await console.settle()
    assert console.nomad_jobs() == stable

    # Both doors show the scheduler's own word while it has one (resolvers/readmodel/health.py);
    # the proc keeps the release's failure for when Nomad's deployments move on.
    web = (await console.app())["procs"]["web"]
    assert "failed: Failed due to unhealthy allocations - rolling back" in web["lastError"]
    rest = (await console.http.get("/api/v1/apps/hello/procs/web/")).json()
    assert rest["proc"]["lasterror"] == web["lastError"]
    async with console.system.services.sessions() as session:
        app = await queries.app_by_name(session, "hello")
        assert app is not None
        stored = {p.name: p for p in await queries.procs_of(session, app.id)}
    for name in ("web", "jobs"):
        assert stored[name].failed_spec_hash
        assert stored[name].last_error.startswith(f"release {V2} was rolled back by the")

    # Deploying again is the retry: this time the image starts.
    console.fake.faults.crashing_images.clear()
    await console.ok("updateApp", name="hello", metaVersion=V2)
    await console.settle()
    assert console.nomad_jobs() != stable
    report = await console.reconcile()
    assert (report.applied, report.held, report.failed) == ([], {}, {})
    assert await console.converged()
    procs = (await console.app())["procs"]
    assert (procs["web"]["lastError"], procs["jobs"]["lastError"]) == ("", "")


async def test_a_lain_yaml_field_nomad_cannot_honour_fails_the_deploy_naming_it(
    console: Console,
) -> None:
    # Dropping it would lose the secret file (or data) on Nomad without a word.
    yaml = two_proc_yaml(extra="  secret_files:\n    - /lain/app/secret.json\n")
    await console.ok("publishRelease", app="hello", metaVersion=V3, lainYaml=yaml)

    payload = await console.mutate("deployApp", name="hello", metaVersion=V3)

    [error] = payload["errors"]
    assert error["code"] == "INVALID"
    assert "hello.worker.jobs: secret_files is not supported on Nomad" in error["message"]
    assert console.nomad_jobs() == {}


async def test_lain_yaml_placement_reaches_the_nomad_job(console: Console) -> None:
    yaml = two_proc_yaml(extra="  filters:\n    - constraint:node==node-3\n")
    await console.ok("publishRelease", app="hello", metaVersion=V3, lainYaml=yaml)

    await console.ok("deployApp", name="hello", metaVersion=V3)

    with console.fake.lock:
        jobs = console.fake.jobs[("default", JOBS)].spec["TaskGroups"][0]
        web = console.fake.jobs[("default", WEB)].spec["TaskGroups"][0]
    assert jobs["Constraints"] == [
        {"LTarget": "${node.unique.name}", "RTarget": "node-3", "Operand": "="}
    ]
    assert "Constraints" not in web  # LAIN's default group places anywhere
