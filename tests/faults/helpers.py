"""What the fault tests share: the console under test, reading its desired state and the
fake Nomad's jobs, and collecting a GraphQL subscription's events in the background."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from backends.nomad import NomadScheduler
from backends.nomad.jobs import META_SPEC_HASH
from resolvers import procs
from resolvers.core.context import OpContext
from resolvers.core.errors import NotFound
from resolvers.core.jobs import build_job
from resolvers.reconcile import ReconcileReport, reconcile
from tests.backends.nomad.helpers import in_step, wait_until
from tests.fakes.nomad import FakeNomad
from tests.fakes.nomad_server import HEARTBEAT, FakeNomadServer
from tests.live import Subscriber, subscribe

__all__ = [
    "DOWN_FAULTS",
    "HEARTBEAT",
    "HEARTBEAT_TIMEOUT",
    "REQUEST_TIMEOUT",
    "Console",
    "EventCollector",
    "JobSummary",
    "assert_clear",
    "check_stream",
    "collect_events",
    "latest",
    "switch_off",
    "switch_on",
    "wait_until",
]

# Short, so that a hang costs the test little; long enough for a loaded machine to answer a
# healthy request (0.5 s was not: a CI run beside a benchmark timed out a healthy read).
REQUEST_TIMEOUT = 2.0
# Well above the heartbeat: a test that counts requests (fail_next) must not see the
# stream reconnect, and its reads, because a loaded machine paused for a moment.
HEARTBEAT_TIMEOUT = 2.0

APP = "hello"
APP_FIELDS = """metaVersion status deployError
  procs { name numInstances cpu memory image deployed lastError }"""


@dataclass(frozen=True, slots=True)
class JobSummary:
    """What decides a proc's instances: the count, and the spec (by its hash)."""

    count: int
    spec_hash: str
    stopped: bool = False


class Console:
    """The app under test, reached over real HTTP, and the fake Nomad behind it."""

    def __init__(
        self,
        base_url: str,
        http: httpx.AsyncClient,
        nomad: FakeNomadServer,
        scheduler: NomadScheduler,
        system: OpContext,
    ) -> None:
        self.base_url = base_url
        self.http = http
        self.nomad = nomad
        self.scheduler = scheduler
        self.system = system

    @property
    def fake(self) -> FakeNomad:
        return self.nomad.fake

    # -- GraphQL --------------------------------------------------------------------------

    async def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post("/graphql", json={"query": query, "variables": variables})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    async def mutate(self, field: str, selection: str = "", **fields: Any) -> dict[str, Any]:
        """Run `field(input: {...fields})`; the payload with its `errors`."""
        input_type = field[0].upper() + field[1:] + "Input"
        data = await self.graphql(
            f"mutation($input: {input_type}!) {{ {field}(input: $input) "
            f"{{ errors {{ code field message }} {selection} }} }}",
            input=fields,
        )
        payload: dict[str, Any] = data[field]
        return payload

    async def ok(self, field: str, selection: str = "", **fields: Any) -> dict[str, Any]:
        payload = await self.mutate(field, selection, **fields)
        assert payload["errors"] == [], payload
        return payload

    async def app(self) -> dict[str, Any]:
        """The app's stored (desired) state, procs by name; no scheduler read involved."""
        data = await self.graphql(f'{{ app(name: "{APP}") {{ {APP_FIELDS} }} }}')
        app: dict[str, Any] = data["app"]
        app["procs"] = {proc.pop("name"): proc for proc in app["procs"]}
        return app

    # -- desired and running state ----------------------------------------------------------

    async def desired_jobs(self) -> dict[str, JobSummary]:
        """The jobs the database says should run, built the way the resolvers build them."""
        try:
            views = await procs.list_procs(self.system, app=APP)
        except NotFound:
            return {}
        domain = self.system.services.domains[0]
        jobs = [
            build_job(view, domain=domain, timezone=self.system.services.timezone)
            for view in views
            if view.deployed
        ]
        return {job.job_id: JobSummary(job.num_instances, job.spec_hash()) for job in jobs}

    def nomad_jobs(self) -> dict[str, JobSummary]:
        """Every job the fake Nomad holds."""
        with self.fake.lock:
            return {
                job_id: JobSummary(
                    count=job.spec["TaskGroups"][0]["Count"],
                    spec_hash=(job.spec.get("Meta") or {}).get(META_SPEC_HASH, ""),
                    stopped=job.stopped,
                )
                for (_, job_id), job in self.fake.jobs.items()
            }

    async def converged(self) -> bool:
        return self.nomad_jobs() == await self.desired_jobs()

    async def reconcile(self) -> ReconcileReport:
        """One reconciler round, as the app's loop runs it."""
        return await reconcile(self.system)

    async def wait_connected(self, *, within: float = 5.0) -> None:
        """Until the scheduler's event stream is connected and has made its first
        reconcile, so that no request of its own is in flight."""
        stream = self.scheduler.event_stream
        assert stream is not None
        await wait_until(
            lambda: stream.connected and stream.reconciles > 0,
            within=within,
            message="the Nomad event stream to connect",
        )

    async def until_rolling(self, proc: str, *, within: float = 10.0) -> None:
        """Until GraphQL shows the proc's rollout (a Nomad deployment) under way."""
        query = f'{{ app(name: "{APP}") {{ procs {{ name rollout }} }} }}'

        async def rolling() -> bool:
            found = (await self.graphql(query))["app"]["procs"]
            return any(p["name"] == proc and p["rollout"] == "RUNNING" for p in found)

        await wait_until(rolling, within=within, message=f"a rollout of {proc}")

    async def settle(self) -> None:
        """Let the fake cluster run until nothing changes (from a thread: it takes locks the
        fake's HTTP server also takes), and the console's event stream follow it: reads
        answer from that stream once it is in step."""
        await asyncio.to_thread(self.fake.settle)
        if self.nomad.running and not self.faults_cut_the_stream:
            await in_step(self.scheduler, self.fake)

    @property
    def faults_cut_the_stream(self) -> bool:
        """Whether a fault keeps the event stream from following Nomad for now."""
        faults = self.nomad.faults
        return faults.stream_silent or faults.stream_flaps or faults.hang or faults.http_500


Event = dict[str, Any]


class EventCollector:
    """An appEvents subscription read into `events` by a background task."""

    QUERY = """subscription($name: String!, $after: String) {
      appEvents(name: $name, after: $after) {
        cursor kind
        app { status }
        proc { name numInstances }
        instance { number status healthy port restarts exitCode }
      }
    }"""

    def __init__(self, subscriber: Subscriber) -> None:
        self.events: list[Event] = []
        self.subscriber = subscriber
        self._task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        while True:
            self.events.append((await self.subscriber.next_event())["appEvents"])

    async def wait_for_state(
        self,
        expected: dict[tuple[str, int], tuple[str, bool | None]],
        *,
        since: int = 0,
        within: float = 10.0,
    ) -> None:
        """Until the events (from the `since`-th on) say that each instance in `expected`
        is in that (status, healthy); others may be anything."""

        def reached() -> bool:
            if self._task.done():
                self._task.result()
            now = latest(self.events[since:])
            return all(now.get(key) == value for key, value in expected.items())

        await wait_until(reached, within=within, message=f"the instances to reach {expected}")

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def collect_events(
    console: Console, after: str | None = None
) -> AsyncIterator[EventCollector]:
    variables: dict[str, Any] = {"name": APP, "after": after}
    async with subscribe(console.base_url, EventCollector.QUERY, variables) as subscriber:
        collector = EventCollector(subscriber)
        try:
            yield collector
        finally:
            await collector.close()


# -- faults -------------------------------------------------------------------------------

DOWN_FAULTS = ["refused", "http_500", "hang"]


def switch_on(server: FakeNomadServer, fault: str) -> str:
    """Make every request fail the way `fault` says; a regex of how the failure of
    reading the leader (the health check every mutation starts with) must be told."""
    if fault == "refused":
        server.faults.refuse_connections()
        return r"is unreachable \(read the leader\): \[Errno 111\] Connection refused"
    if fault == "http_500":
        server.faults.http_500 = True
        return r"answered 500 to read the leader: fake: injected server error"
    if fault == "hang":
        server.faults.hang = True
        return rf"did not answer read the leader within {REQUEST_TIMEOUT:g}s"
    raise ValueError(fault)


def switch_off(server: FakeNomadServer) -> None:
    server.faults.reset()
    server.faults.accept_connections()


# What a message must never show: library exception texts, reprs and tracebacks.
_LEAKS = (
    "HTTPConnectionPool",
    "urllib3",
    "requests.",
    "httpx",
    "Max retries",
    "NewConnectionError",
    "ReadTimeoutError",
    "Traceback",
    " object at 0x",
    "nomad.api",
)


def assert_clear(message: str, *, nomad_url: str, pattern: str) -> None:
    """The message names Nomad by its address and says what failed, in our words."""
    assert f"Nomad at {nomad_url}" in message, message
    assert re.search(pattern, message), f"{pattern!r} not in {message!r}"
    for leak in _LEAKS:
        assert leak not in message, f"{leak!r} leaks into {message!r}"


# -- subscriptions --------------------------------------------------------------------------


def check_stream(events: list[Event], *, first: int | None = None) -> dict[tuple[str, int], Any]:
    """What a subscriber must be able to rely on; returns each instance's last snapshot.

    Cursors go up by one from event to event (only one app exists, so the app's events
    are all of the bus's: a skipped cursor is a lost event), and no instance is reported
    twice in a row in the same state (a duplicate).
    """
    cursors = [int(event["cursor"]) for event in events]
    start = cursors[0] if first is None else first
    assert cursors == list(range(start, start + len(cursors))), cursors
    last: dict[tuple[str, int], Any] = {}
    for event in events:
        if event["kind"] != "INSTANCE":
            continue
        key = (event["proc"]["name"], event["instance"]["number"])
        assert last.get(key) != event["instance"], f"{key} repeated at cursor {event['cursor']}"
        last[key] = event["instance"]
    return last


def latest(events: list[Event]) -> dict[tuple[str, int], tuple[str, bool | None]]:
    """Each instance's last (status, healthy) as the events told it."""
    found: dict[tuple[str, int], tuple[str, bool | None]] = {}
    for event in events:
        if event["kind"] == "INSTANCE":
            instance = event["instance"]
            found[(event["proc"]["name"], instance["number"])] = (
                instance["status"],
                instance["healthy"],
            )
    return found
