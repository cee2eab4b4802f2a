"""Rollouts as users meet them, through both doors, with real processes (local backend).

A mutation that rolls answers at once; the rollout runs in the background; a new instance
that is not ready stops it with the old instances still serving; and REST and GraphQL tell
the same story about it, errors, releases and health included.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.app import create_app
from server.settings import load_settings
from tests.app_python import APP_PYTHON
from tests.backends.local.helpers import WEB  # 200 on /health, 404 elsewhere, on $PORT
from tests.live import GraphQLHttp, Subscriber, serve, subscribe
from tests.releases import V1, V2

# Needs 100 MB before it can work: under a smaller memory limit it dies right after exec.
GREEDY_WORKER = "x = bytearray(100 * 2**20); import time; time.sleep(3600)"
SLEEPER = "import time; time.sleep(3600)"
CRASHER = "raise SystemExit(3)"
ROLLOUT_TIMEOUT = 4  # seconds the console waits for a new instance to be ready


def lain_yaml(*, healthcheck: str = "/health", worker: str = GREEDY_WORKER) -> str:
    web = "\n".join("      " + line for line in WEB.strip().splitlines())
    return f"""\
appname: hello
web:
  cmd:
    - {APP_PYTHON}
    - -c
    - |
{web}
  port: 8080
  num_instances: 2
  healthcheck: {healthcheck}
  memory: 256m
worker.jobs:
  cmd: [{APP_PYTHON}, -c, "{worker}"]
  num_instances: 2
  memory: 256m
"""


APP = """{ app(name: "hello") {
  metaVersion status health deployError
  procs {
    name metaVersion health rollout lastError runningReleases
    instances { number status release restarts }
  }
} }"""

PROC_EVENTS = """subscription($proc: String!) {
  procEvents(app: "hello", proc: $proc) { kind proc { name rollout health lastError } }
}"""


@dataclass
class Doors:
    base_url: str
    gql: GraphQLHttp
    client: httpx.AsyncClient

    async def app(self) -> dict[str, Any]:
        app: dict[str, Any] = (await self.gql(APP))["app"]
        app["procs"] = {proc.pop("name"): proc for proc in app["procs"]}
        return app

    async def rest_app(self) -> dict[str, Any]:
        response = await self.client.get("/api/v1/apps/hello/")
        assert response.status_code == 200, response.text
        app: dict[str, Any] = response.json()["app"]
        app["procs"] = {proc["procname"]: proc for proc in app["procs"]}
        return app

    async def mutate(self, mutation: str) -> list[dict[str, Any]]:
        data = await self.gql(f"mutation {{ {mutation} {{ errors {{ code message }} }} }}")
        (payload,) = data.values()
        errors: list[dict[str, Any]] = payload["errors"]
        return errors


@pytest.fixture
async def doors(database_url: str, data_dir: Path, engine: object) -> AsyncIterator[Doors]:
    settings = replace(
        load_settings({}),
        data_dir=data_dir,
        database_url=database_url,
        # A reconciler round holds the app for a moment: a request then gets CONFLICT, which
        # would make the timing here flaky (tests/resolvers cover it during a rollout).
        reconcile_interval=0,
        min_healthy_time=1,
        rollout_timeout=ROLLOUT_TIMEOUT,
    )
    async with (
        serve(create_app(settings)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as client,
    ):
        doors = Doors(base_url, GraphQLHttp(client), client)
        try:
            yield doors
        finally:
            # Leave no process behind, whatever the test did.
            await doors.mutate('undeployApp(input: {name: "hello"})')


async def _publish(doors: Doors, version: str, text: str) -> None:
    response = await doors.client.post(
        "/api/v1/repos/hello/versions/", json={"meta_version": version, "lain_yaml": text}
    )
    assert response.status_code == 201, response.text


async def _deployed(doors: Doors, version: str, text: str) -> None:
    """hello registered, the release published and deployed through REST, and healthy."""
    assert not await doors.mutate('registerRepo(input: {name: "hello"})')
    await _publish(doors, version, text)
    response = await doors.client.post("/api/v1/apps/", json={"appname": "hello"})
    assert response.status_code == 202, response.text
    await _until_health(doors, "HEALTHY")


async def _until_app(
    doors: Doors, holds: Callable[[dict[str, Any]], bool], *, within: float = 30.0
) -> dict[str, Any]:
    """The app (GraphQL) once `holds` is true of it; fails the test after `within` s."""
    deadline = time.monotonic() + within
    while True:
        app = await doors.app()
        if holds(app):
            return app
        assert time.monotonic() < deadline, f"the app never got there: {app}"
        await asyncio.sleep(0.1)


async def _until_health(doors: Doors, health: str) -> dict[str, Any]:
    return await _until_app(doors, lambda app: app["health"] == health)


async def _until_proc(
    doors: Doors, proc: str, holds: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    app = await _until_app(doors, lambda app: holds(app["procs"][proc]))
    found: dict[str, Any] = app["procs"][proc]
    return found


async def _until_rollout(sub: Subscriber, proc: str, rollout: str) -> dict[str, Any]:
    """The proc as the first of its events whose rollout is `rollout` shows it."""
    while True:
        event = (await sub.next_event())["procEvents"]
        if event["kind"] == "PROC" and event["proc"]["rollout"] == rollout:
            found: dict[str, Any] = event["proc"]
            return found


async def test_update_whose_health_check_never_passes_is_answered_at_once_and_stops_truthfully(
    doors: Doors,
) -> None:
    await _deployed(doors, V1, lain_yaml(worker=SLEEPER))
    await _publish(doors, V2, lain_yaml(healthcheck="/missing"))
    before = await doors.app()
    old_web = before["procs"]["web"]["instances"]
    assert before["procs"]["web"]["runningReleases"] == [V1]

    async with subscribe(doors.base_url, PROC_EVENTS, {"proc": "web"}) as sub:
        started = time.monotonic()
        response = await doors.client.put("/api/v1/apps/hello/", json={"meta_version": V2})
        answered = time.monotonic() - started
        assert response.status_code == 202, response.text
        assert answered < 2.0, f"the update took {answered:.1f}s to be accepted"

        during = await doors.app()
        web = during["procs"]["web"]
        assert (web["rollout"], web["health"], during["health"]) == (
            "RUNNING",
            "ROLLING",
            "ROLLING",
        )
        assert web["metaVersion"] == V2
        assert web["runningReleases"] == [V1]
        # Overlapping operations wait for the rollout, on both doors.
        [conflict] = await doors.mutate(
            'scaleProc(input: {app: "hello", proc: "web", numInstances: 3})'
        )
        assert conflict["code"] == "CONFLICT", conflict
        assert "rollout of hello.web.web" in conflict["message"]
        response = await doors.client.put("/api/v1/apps/hello/", json={"meta_version": V1})
        assert response.status_code == 406, response.text  # LAIN's answer to a failed update
        assert "busy with a rollout of hello.web.web" in response.json()["msg"]

        stopped = await _until_rollout(sub, "web", "STOPPED")

    assert "rolling update stopped at instance 1" in stopped["lastError"]
    after = await doors.app()
    web = after["procs"]["web"]
    assert web["rollout"] == "STOPPED"
    assert web["health"] == "DEGRADED"
    assert after["health"] == "DEGRADED"
    # Every web instance still runs the old release: the same ones as before.
    assert web["instances"] == old_web
    assert web["runningReleases"] == [V1]
    assert f"was not ready within {ROLLOUT_TIMEOUT}s (GET /missing: HTTP 404)" in web["lastError"]
    assert "the old instances keep running" in web["lastError"]
    assert after["deployError"] == web["lastError"]
    assert after["metaVersion"] == V2  # what the app is meant to run, as LAIN shows it
    # The worker had nothing wrong with it and finishes its own rollout.
    jobs = await _until_proc(doors, "jobs", lambda proc: proc["rollout"] == "NONE")
    assert jobs["runningReleases"] == [V2]
    assert jobs["health"] == "HEALTHY"
    # REST reads the same error from the same place.
    rest = await doors.rest_app()
    assert rest["deployerror"] == after["deployError"]
    assert rest["procs"]["web"]["lasterror"] == web["lastError"]
    assert [pod["status"] for pod in rest["procs"]["web"]["pods"]] == ["True", "True"]

    # Going back to the release that runs is an update like any other: answered at once,
    # and the app is healthy again once the worker has rolled back too.
    started = time.monotonic()
    errors = await doors.mutate(f'updateApp(input: {{name: "hello", metaVersion: "{V1}"}})')
    assert errors == []
    assert time.monotonic() - started < 2.0
    app = await _until_health(doors, "HEALTHY")
    assert app["deployError"] == ""
    assert {name: proc["runningReleases"] for name, proc in app["procs"].items()} == {
        "web": [V1],
        "jobs": [V1],
    }
    assert app["procs"]["web"]["instances"] == old_web  # never touched


async def test_resize_below_what_the_app_needs_keeps_the_healthy_instances(doors: Doors) -> None:
    await _deployed(doors, V1, lain_yaml())
    before = await doors.app()
    old_pods = [pod["containerid"] for pod in (await doors.rest_app())["procs"]["jobs"]["pods"]]

    async with subscribe(doors.base_url, PROC_EVENTS, {"proc": "jobs"}) as sub:
        started = time.monotonic()
        errors = await doors.mutate(
            'resizeProc(input: {app: "hello", proc: "jobs", memory: "64m"})'
        )
        assert errors == []
        assert time.monotonic() - started < 2.0
        stopped = await _until_rollout(sub, "jobs", "STOPPED")

    assert (
        "rolling update stopped at instance 1: the new one did not stay up"
        in (stopped["lastError"])
    )
    after = await doors.app()
    jobs = after["procs"]["jobs"]
    assert jobs["instances"] == before["procs"]["jobs"]["instances"]
    assert [i["status"] for i in jobs["instances"]] == ["RUNNING", "RUNNING"]
    assert jobs["health"] == "DEGRADED"
    rest = await doors.rest_app()
    assert [pod["containerid"] for pod in rest["procs"]["jobs"]["pods"]] == old_pods
    assert rest["procs"]["jobs"]["lasterror"] == jobs["lastError"]


async def test_an_app_whose_instances_all_fail_is_failing_never_healthy(doors: Doors) -> None:
    assert not await doors.mutate('registerRepo(input: {name: "hello"})')
    await _publish(doors, V1, lain_yaml(worker=CRASHER))
    response = await doors.client.post("/api/v1/apps/", json={"appname": "hello"})
    assert response.status_code == 202, response.text
    assert not await doors.mutate('undeployProc(input: {app: "hello", proc: "web"})')

    app = await _until_health(doors, "FAILING")

    jobs = app["procs"]["jobs"]
    assert jobs["health"] == "FAILING"
    assert {i["status"] for i in jobs["instances"]} <= {"FAILED", "PENDING"}
    assert app["procs"]["web"]["health"] == "STOPPED"
    assert "code 3" in jobs["lastError"]


async def test_restarting_every_instance_answers_at_once_and_rolls_one_at_a_time(
    doors: Doors,
) -> None:
    await _deployed(doors, V1, lain_yaml(worker=SLEEPER))
    before = {i["number"]: i for i in (await doors.app())["procs"]["web"]["instances"]}

    started = time.monotonic()
    assert await doors.mutate('restartProc(input: {app: "hello", proc: "web"})') == []
    assert time.monotonic() - started < 2.0
    web = (await doors.app())["procs"]["web"]
    assert (web["rollout"], web["health"]) == ("RUNNING", "ROLLING")
    [conflict] = await doors.mutate('restartProc(input: {app: "hello", proc: "web"})')
    assert conflict["code"] == "CONFLICT"

    app = await _until_app(
        doors, lambda app: app["procs"]["web"]["rollout"] == "NONE" and app["health"] == "HEALTHY"
    )
    after = {i["number"]: i for i in app["procs"]["web"]["instances"]}
    assert [after[n]["restarts"] - before[n]["restarts"] for n in (1, 2)] == [1, 1]
    assert app["procs"]["web"]["lastError"] == ""
