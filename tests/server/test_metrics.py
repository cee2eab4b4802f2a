"""Metrics at /metrics, read over real HTTP after the actions that should move them."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backends.types import EventKind, ProcState, RolloutStatus, SchedulerEvent
from resolvers.core.events import EventBus
from server.app import create_app
from server.metrics import Metrics
from server.settings import Settings, load_settings
from tests.fakes.scheduler import FakeScheduler
from tests.live import serve, subscribe
from tests.releases import V1, two_proc_yaml
from tests.security.tenants import serve_tenants, tenant_settings

WEB = "hello.web.web"
PUBLISH = """mutation($y: String!, $v: String!) {
  publishRelease(input: {app: "hello", metaVersion: $v, lainYaml: $y}) { errors { code } }
}"""
SCALE = """mutation($n: Int!) {
  scaleProc(input: {app: "hello", proc: "web", numInstances: $n}) { errors { code } }
}"""
PROC_EVENTS = """subscription { procEvents(app: "hello", proc: "web") { cursor } }"""


def sample(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 when none)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


@dataclass
class Console:
    http: httpx.AsyncClient
    url: str
    scheduler: FakeScheduler

    async def metrics(self) -> str:
        response = await self.http.get("/metrics")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain; version=")
        return response.text

    async def gql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post("/graphql", json={"query": query, "variables": variables})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def until(self, check: Callable[[str], bool], *, seconds: float = 30.0) -> str:
        """Poll /metrics until `check` holds (the bus and the reconciler run on their own)."""
        async with asyncio.timeout(seconds):
            while True:
                text = await self.metrics()
                if check(text):
                    return text
                await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def console(settings: Settings) -> AsyncIterator[Console]:
    scheduler = FakeScheduler()
    async with (
        serve(create_app(settings, scheduler=scheduler)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        yield Console(http, url, scheduler)


def _settings(database_url: str, data_dir: Path, **changes: Any) -> Settings:
    base = replace(load_settings({}), data_dir=data_dir, database_url=database_url)
    return replace(base, **{"reconcile_interval": 0, **changes})


@pytest.fixture
async def live(database_url: str, data_dir: Path, engine: object) -> AsyncIterator[Console]:
    async with console(_settings(database_url, data_dir)) as c:
        yield c


async def _deploy_hello(c: Console) -> None:
    await c.gql('mutation { registerRepo(input: {name: "hello"}) { errors { code } } }')
    body = await c.gql(PUBLISH, y=two_proc_yaml(), v=V1)
    assert body["data"]["publishRelease"]["errors"] == []
    body = await c.gql('mutation { deployApp(input: {name: "hello"}) { errors { code } } }')
    assert body["data"]["deployApp"]["errors"] == []


async def test_rest_requests_are_timed_by_route_template_never_the_path(live: Console) -> None:
    await _deploy_hello(live)
    assert (await live.http.get("/api/v1/apps/hello/")).status_code == 200
    assert (await live.http.get("/api/v1/apps/ghost/")).status_code == 404
    assert (await live.http.get("/v1/apps/hello/procs/web/")).status_code == 200
    assert (await live.http.get("/api/v1/no/such/thing/")).status_code == 404
    assert (await live.http.get("/ui/")).status_code == 200
    text = await live.metrics()
    name = "lain_console_http_request_duration_seconds_count"
    assert sample(text, name, route="/api/v1/apps/{app}/", method="GET", status="200") == 1
    assert sample(text, name, route="/api/v1/apps/{app}/", method="GET", status="404") == 1
    assert sample(text, name, route="/v1/apps/{app}/procs/{proc}/", status="200") == 1
    assert sample(text, name, route="/api/v1/*", status="404") == 1
    assert sample(text, name, route="/ui/*", status="200") == 1
    assert sample(text, name, route="/graphql", method="POST", status="200") == 3
    for raw in ("hello", "ghost", "/no/such"):
        assert raw not in text


async def test_graphql_operations_by_bounded_name_and_outcome(live: Console) -> None:
    await live.gql("query Apps { apps(first: 5) { edges { node { name } } } }")
    await live.gql("{ apps(first: 5) { edges { node { name } } } }")
    await live.gql("query Broken { nosuchfield }")
    body = await live.gql(SCALE, n=2)  # no such app: a failing mutation
    assert body["data"]["scaleProc"]["errors"] == [{"code": "NOT_FOUND"}]
    text = await live.metrics()
    name = "lain_console_graphql_operation_duration_seconds_count"
    assert sample(text, name, type="query", operation="Apps", outcome="ok") == 1
    assert sample(text, name, type="query", operation="anonymous", outcome="ok") == 1
    assert sample(text, name, operation="Broken", outcome="rejected") == 1
    assert sample(text, name, type="mutation", operation="anonymous", outcome="ok") == 1
    mutations = "lain_console_mutations_total"
    assert sample(text, mutations, mutation="scaleProc", code="NOT_FOUND") == 1
    await _deploy_hello(live)
    text = await live.metrics()
    assert sample(text, mutations, mutation="deployApp", code="OK") == 1
    assert sample(text, mutations, mutation="registerRepo", code="OK") == 1


async def test_rest_mutations_count_under_the_same_kinds_as_graphql(live: Console) -> None:
    """LAIN's REST routes run the same operations: scaling through PATCH is a scaleProc, a
    second registration is a registerRepo refused with CONFLICT, and a deploy that creates
    its procs is one deployApp (not one per proc)."""
    repos = await live.http.post("/api/v1/repos/", json={"appname": "hello"})
    assert repos.status_code == 201, repos.text
    again = await live.http.post("/api/v1/repos/", json={"appname": "hello"})
    assert again.status_code == 409, again.text
    assert (await live.gql(PUBLISH, y=two_proc_yaml(), v=V1))["data"]["publishRelease"] == {
        "errors": []
    }
    deployed = await live.http.post("/api/v1/apps/", json={"appname": "hello"})
    assert deployed.status_code == 202, deployed.text
    scaled = await live.http.patch("/api/v1/apps/hello/procs/web/", json={"num_instances": 2})
    assert scaled.status_code == 202, scaled.text
    missing = await live.http.patch("/api/v1/apps/ghost/procs/web/", json={"num_instances": 2})
    assert missing.status_code == 404, missing.text

    text = await live.metrics()
    mutations = "lain_console_mutations_total"
    assert sample(text, mutations, mutation="registerRepo", code="OK") == 1
    assert sample(text, mutations, mutation="registerRepo", code="CONFLICT") == 1
    assert sample(text, mutations, mutation="publishRelease", code="OK") == 1
    assert sample(text, mutations, mutation="deployApp", code="OK") == 1
    assert sample(text, mutations, mutation="deployProc") == 0
    assert sample(text, mutations, mutation="scaleProc", code="OK") == 1
    assert sample(text, mutations) == 5  # the 404 was LAIN's route check, before any operation


def test_operation_names_past_the_cap_become_other() -> None:
    metrics = Metrics(max_operation_names=2)
    assert [metrics.operation_name(n) for n in ("A", "B", "C", None, "A", "")] == [
        "A",
        "B",
        "other",
        "anonymous",
        "A",
        "anonymous",
    ]


async def test_subscriptions_and_websockets_are_gauged_and_lag_measured(live: Console) -> None:
    await _deploy_hello(live)
    text = await live.metrics()
    assert sample(text, "lain_console_websocket_connections") == 0
    assert sample(text, "lain_console_event_subscribers") == 0
    async with subscribe(live.url, PROC_EVENTS) as sub:
        await live.until(lambda t: sample(t, "lain_console_event_subscribers") == 1)
        text = await live.metrics()
        assert sample(text, "lain_console_websocket_connections") == 1
        lag_before = sample(text, "lain_console_event_lag_seconds_count")
        await live.gql(SCALE, n=3)
        await sub.next_event()
        text = await live.until(
            lambda t: sample(t, "lain_console_event_lag_seconds_count") > lag_before
        )
        assert sample(text, "lain_console_event_lag_seconds_sum") < 5
    await live.until(
        lambda t: (
            sample(t, "lain_console_websocket_connections") == 0
            and sample(t, "lain_console_event_subscribers") == 0
        )
    )


async def test_scheduler_calls_are_timed_and_errors_counted(live: Console) -> None:
    live.scheduler.fail_jobs.add(WEB)
    await live.gql('mutation { registerRepo(input: {name: "hello"}) { errors { code } } }')
    await live.gql(PUBLISH, y=two_proc_yaml(), v=V1)
    body = await live.gql('mutation { deployApp(input: {name: "hello"}) { errors { code } } }')
    assert body["data"]["deployApp"]["errors"] != []
    text = await live.metrics()
    calls = "lain_console_scheduler_call_duration_seconds_count"
    errors = "lain_console_scheduler_call_errors_total"
    assert sample(text, errors, call="apply", error="SchedulerRejected") == 1
    assert sample(text, calls, call="apply") >= 1  # failed calls are timed too
    # health never raises: a scheduler that answers "not ok" is counted as its error.
    live.scheduler.down = True
    assert (await live.http.get("/healthz")).status_code == 503
    text = await live.metrics()
    assert sample(text, errors, call="health", error="unhealthy") == 1


async def test_reconciler_rounds_and_drift_corrected(
    database_url: str, data_dir: Path, engine: object
) -> None:
    async with console(_settings(database_url, data_dir, reconcile_interval=1)) as c:
        await _deploy_hello(c)
        rounds = "lain_console_reconcile_rounds_total"
        seen = sample(await c.metrics(), rounds, outcome="ok")
        await c.until(lambda t: sample(t, rounds, outcome="ok") > seen)
        drift = "lain_console_reconcile_drift_corrected_total"
        assert sample(await c.metrics(), drift) == 0
        del c.scheduler.jobs[WEB]  # the job vanished behind the console's back
        text = await c.until(lambda t: sample(t, drift, action="applied") == 1)
        assert WEB in c.scheduler.jobs
        assert sample(text, drift, action="scaled") == 0


@pytest.mark.parametrize("app_labels", [False, True])
async def test_rollouts_started_and_finished_from_the_event_bus(
    database_url: str, data_dir: Path, engine: object, app_labels: bool
) -> None:
    settings = _settings(database_url, data_dir, metrics_app_labels=app_labels)
    async with console(settings) as live:
        await _deploy_hello(live)
        rollouts = "lain_console_rollouts_total"
        live.scheduler.rolling.add(WEB)
        body = await live.gql(SCALE, n=2)
        assert body["data"]["scaleProc"]["errors"] == []
        await live.until(lambda t: sample(t, rollouts, transition="started") == 1)
        # The backend reports the rollout done, as the local supervisor or a Nomad deployment
        # does: a proc event whose state has no rollout running.
        live.scheduler.rolling.discard(WEB)
        live.scheduler.feed.publish(EventKind.PROC, WEB, proc=await live.scheduler.state(WEB))
        text = await live.until(lambda t: sample(t, rollouts, transition="finished") == 1)
        assert sample(text, rollouts, transition="started") == 1
        # App names only when the setting allows them.
        assert (sample(text, rollouts, transition="finished", app="hello") == 1) is app_labels
        assert ('app="hello"' in text) is app_labels


def _proc(rollout: RolloutStatus, job_id: str = WEB) -> SchedulerEvent:
    state = ProcState(job_id=job_id, exists=True, rollout=rollout)
    return SchedulerEvent(cursor=0, kind=EventKind.PROC, job_id=job_id, proc=state)


def test_a_rollout_that_stops_counts_as_stopped_with_app_labels_when_allowed() -> None:
    # The fake cannot stop a rollout; the local backend and Nomad deployments report it as a
    # proc event with rollout=stopped, which is what the bus sees here.
    metrics = Metrics(app_labels=True)
    bus = EventBus(observer=metrics)
    for status in (RolloutStatus.RUNNING, RolloutStatus.RUNNING, RolloutStatus.STOPPED):
        bus.publish_scheduler_event(_proc(status))
    bus.publish_scheduler_event(_proc(RolloutStatus.NONE))  # stopped -> none: not a rollout
    rollouts = metrics.rollouts
    assert rollouts.labels("started", "hello")._value.get() == 1
    assert rollouts.labels("stopped", "hello")._value.get() == 1
    assert rollouts.labels("finished", "hello")._value.get() == 0


async def test_metrics_switched_off_is_not_found(
    database_url: str, data_dir: Path, engine: object
) -> None:
    async with console(_settings(database_url, data_dir, metrics=False)) as c:
        assert (await c.http.get("/metrics")).status_code == 404


async def test_two_apps_in_one_process_keep_their_own_figures(
    database_url: str, data_dir: Path, engine: object
) -> None:
    # Two local-backend consoles on one PostgreSQL database are refused (one machine runs the
    # apps); the registries are the subject here, and the scheduler is a fake either way.
    settings = _settings(database_url, data_dir, backend="nomad")
    async with console(settings) as first, console(settings) as second:
        await first.http.get("/healthz")
        await first.http.get("/healthz")
        await second.http.get("/healthz")
        name = "lain_console_http_request_duration_seconds_count"
        assert sample(await first.metrics(), name, route="/healthz") == 2
        assert sample(await second.metrics(), name, route="/healthz") == 1


class TestAccessWithAuthOn:
    @staticmethod
    @contextlib.asynccontextmanager
    async def _tenants(
        database_url: str,
        data_dir: Path,
        sessions: async_sessionmaker[AsyncSession],
        networks: str = "",
    ) -> AsyncIterator[Any]:
        allowed = tuple(ipaddress.ip_network(n) for n in networks.split(",") if n)
        settings = tenant_settings(database_url, data_dir, metrics_allow_networks=allowed)
        async with serve_tenants(settings, sessions, apps=False) as tenants:
            yield tenants

    async def test_anonymous_normal_user_and_admin(
        self, database_url: str, data_dir: Path, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        async with self._tenants(database_url, data_dir, sessions, "10.0.0.0/8") as t:
            anonymous = await t.rest(None, "GET", "/metrics")
            assert anonymous.status_code == 401
            assert anonymous.json()["code"] == "UNAUTHENTICATED"
            bad = await t.http.get("/metrics", headers={"access-token": "lct_not-a-token"})
            assert bad.status_code == 401
            normal = await t.rest("mallory", "GET", "/metrics")
            assert normal.status_code == 403
            assert normal.json()["code"] == "FORBIDDEN"
            assert "lain_console" not in anonymous.text + normal.text
            admin = await t.rest("root", "GET", "/metrics")
            assert admin.status_code == 200
            assert "lain_console_http_request_duration_seconds" in admin.text

    async def test_a_listed_network_needs_no_token(
        self, database_url: str, data_dir: Path, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        async with self._tenants(database_url, data_dir, sessions, "10.0.0.0/8,127.0.0.1/32") as t:
            response = await t.rest(None, "GET", "/metrics")
            assert response.status_code == 200
            assert "lain_console_http_request_duration_seconds" in response.text
