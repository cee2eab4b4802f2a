"""The whole life of an app over real HTTP and websockets, with real processes (local backend)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.app import create_app
from server.settings import load_settings
from tests.app_python import APP_PYTHON
from tests.live import GraphQLHttp, Subscriber, serve, subscribe
from tests.releases import V1, V2

WEB_SERVER = """\
import http.server, os
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(os.environ["LAIN_APP_RELEASE_VERSION"].encode())
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


def lain_yaml(version_tag: str) -> str:
    indented = "\n".join("      " + line for line in WEB_SERVER.splitlines())
    return f"""\
appname: hello
web:
  cmd:
    - {APP_PYTHON}
    - -c
    - |
{indented}
  port: 8080
  healthcheck: /health
  memory: 256m
  env:
    - TAG={version_tag}
worker.jobs:
  cmd: [{APP_PYTHON}, -c, "import time; time.sleep(3600)"]
  memory: 256m
"""


EVENTS = """subscription($after: String) {
  appEvents(name: "hello", after: $after) {
    cursor kind app { status } proc { name rollout }
    instance { number status healthy restarts port }
  }
}"""


@pytest.fixture
async def live(
    database_url: str, data_dir: Path, engine: object
) -> AsyncIterator[tuple[str, GraphQLHttp]]:
    settings = replace(
        load_settings({}), data_dir=data_dir, database_url=database_url, min_healthy_time=1
    )
    async with (
        serve(create_app(settings)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as client,
    ):
        gql = GraphQLHttp(client)
        yield base_url, gql
        # Leave no process behind, whatever the test did.
        await gql('mutation { undeployApp(input: {name: "hello"}) { errors { code } } }')


async def client_get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(url)


Matcher = Callable[[dict[str, Any]], bool]


async def _until(sub: Subscriber, *matchers: Matcher) -> list[dict[str, Any]]:
    """Read events until each matcher has matched one, in any order; returns those events.

    Each read is bounded by the subscriber's timeout, so a missing event fails the test.
    """
    found: dict[int, dict[str, Any]] = {}
    while len(found) < len(matchers):
        event = (await sub.next_event())["appEvents"]
        for index, matches in enumerate(matchers):
            if index not in found and matches(event):
                found[index] = event
                break
    return [found[index] for index in range(len(matchers))]


def _running(proc: str, number: int, *, restarts: int | None = None) -> Callable[..., bool]:
    def matches(event: dict[str, Any]) -> bool:
        instance = event["instance"]
        return (
            event["kind"] == "INSTANCE"
            and event["proc"] is not None
            and event["proc"]["name"] == proc
            and instance["number"] == number
            and instance["status"] == "RUNNING"
            and instance["healthy"] is not False
            and (restarts is None or instance["restarts"] == restarts)
        )

    return matches


def _rolled_out(proc: str) -> Matcher:
    def matches(event: dict[str, Any]) -> bool:
        found = event["proc"]
        return event["kind"] == "PROC" and found["name"] == proc and found["rollout"] == "NONE"

    return matches


async def _mutate(gql: GraphQLHttp, mutation: str) -> dict[str, Any]:
    data = await gql(f"mutation {{ {mutation} {{ errors {{ code message }} }} }}")
    (payload,) = data.values()
    assert payload["errors"] == [], payload
    return payload


async def _procs(gql: GraphQLHttp) -> dict[str, Any]:
    data = await gql(
        '{ app(name: "hello") { metaVersion status procs { name numInstances cpu memory '
        "instances { number status port } } } }"
    )
    app = data["app"]
    return {p["name"]: p for p in app.pop("procs")} | {"_app": app}


async def test_app_lifecycle_over_graphql_with_real_processes(
    live: tuple[str, GraphQLHttp],
) -> None:
    base_url, gql = live
    await _mutate(gql, 'registerRepo(input: {name: "hello"})')
    for version, tag in [(V1, "one"), (V2, "two")]:
        await gql(
            "mutation($v: String!, $y: String!) { publishRelease(input: "
            '{app: "hello", metaVersion: $v, lainYaml: $y}) { errors { code message } } }',
            v=version,
            y=lain_yaml(tag),
        )

    async with subscribe(base_url, EVENTS) as sub:
        await _mutate(gql, f'deployApp(input: {{name: "hello", metaVersion: "{V1}"}})')
        await _until(sub, _running("web", 1), _running("jobs", 1))
        procs = await _procs(gql)
        assert procs["_app"] == {"metaVersion": V1, "status": "DEPLOYED"}
        web_port = procs["web"]["instances"][0]["port"]
        assert (await client_get(f"http://127.0.0.1:{web_port}/health")).text == V1

        # Scale up: exactly two new instances, the first keeps running.
        await _mutate(gql, 'scaleProc(input: {app: "hello", proc: "web", numInstances: 3})')
        await _until(sub, _running("web", 2), _running("web", 3))
        procs = await _procs(gql)
        assert [i["status"] for i in procs["web"]["instances"]] == ["RUNNING"] * 3
        assert procs["web"]["instances"][0]["port"] == web_port

        await _mutate(gql, 'scaleProc(input: {app: "hello", proc: "web", numInstances: 1})')
        await _until(
            sub,
            lambda e: e["kind"] == "PROC" and e["proc"]["name"] == "web",
        )

        await _mutate(gql, 'resizeProc(input: {app: "hello", proc: "jobs", memory: "512m"})')
        # The mutation answers at once; the replacement rolls in the background.
        await _until(sub, _running("jobs", 1), _rolled_out("jobs"))
        assert (await _procs(gql))["jobs"]["memory"] == "512m"

        await _mutate(gql, 'restartProc(input: {app: "hello", proc: "jobs", instance: 1})')
        (restarted,) = await _until(sub, _running("jobs", 1, restarts=1))
        assert restarted["instance"]["restarts"] == 1

        await _mutate(gql, f'updateApp(input: {{name: "hello", metaVersion: "{V2}"}})')
        await _until(
            sub,
            lambda e: e["kind"] == "APP" and e["app"]["status"] == "DEPLOYED",
            _rolled_out("web"),
            _rolled_out("jobs"),
        )
        procs = await _procs(gql)
        assert procs["_app"]["metaVersion"] == V2
        assert procs["web"]["numInstances"] == 1  # kept across the update
        assert procs["jobs"]["memory"] == "512m"  # kept across the update

        await _mutate(gql, 'undeployApp(input: {name: "hello"})')
        await _until(sub, lambda e: e["kind"] == "APP" and e["app"]["status"] == "UNDEPLOYED")
    assert (await gql('{ app(name: "hello") { metaVersion procs { name } } }'))["app"] == {
        "metaVersion": None,
        "procs": [],
    }
