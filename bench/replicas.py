"""The durable event log and several replicas: `python -m bench.replicas [--postgres URL]`.

Three measurements:

- persist rate: how many scheduler events per second one console's event bus can append
  to the event log (batched INSERTs, each event with its app and proc snapshots taken
  through the real resolvers), on SQLite and on PostgreSQL. In-process: publish N
  instance events of a deployed app at once, time until the writer has persisted them all.
- cross-replica latency: two `lain-console serve` processes (Nomad backend, one fake Nomad,
  one PostgreSQL database); one subscriber of `procEvents` on replica B; `scaleProc` sent to
  replica A; per round, the time from sending the mutation to receiving the event on B.
- fan-out over replicas: 1,000 subscribers, half on A and half on B (`bench.wsclients`
  processes); `scaleProc` on A; per subscriber, the time from sending the mutation to
  receiving the event.

The replica parts need PostgreSQL: `--postgres postgresql+asyncpg://user@host/db` (a scratch
database is created beside it and dropped), or LAIN_CONSOLE_TEST_DATABASE_URL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from backends.types import EventKind, InstanceState, InstanceStatus, SchedulerEvent
from bench.fanout import _subscribers
from bench.report import Latencies, Table, verdict
from bench.seed import app_name, lain_yaml
from resolvers import apps, releases, repos
from resolvers.core.context import ANONYMOUS, SYSTEM, OpContext, Services
from resolvers.core.events import EventBus
from resolvers.watch import take_snapshots
from store import eventlog
from store.engine import make_sessionmaker, open_engine
from store.migrate import upgrade
from tests.databases import scratch_database
from tests.e2e.replicas import Consoles, consoles, shared_nomad
from tests.fakes.scheduler import FakeScheduler
from tests.releases import meta_version

__all__ = ["main"]

_APP, _PROC = app_name(0), "web"  # what `bench.fanout`'s subscribers watch
_JOB = f"{_APP}.web.{_PROC}"
CROSS_TARGET_MS = 100.0
FANOUT_TARGET_MS = 250.0
_SUBSCRIPTION = (
    "subscription($app: String!, $proc: String!) { procEvents(app: $app, proc: $proc) "
    "{ cursor kind proc { name numInstances } } }"
)
_SCALE = (
    "mutation($n: Int!) { scaleProc(input: "
    f'{{app: "{_APP}", proc: "{_PROC}", numInstances: $n}}) {{ errors {{ code message }} }} }}'
)


# -- persist rate ---------------------------------------------------------------------------


async def _persist_rate(url: str, events: int) -> tuple[float, int]:
    """Events per second the writer persisted, and how many rows it wrote."""
    async with open_engine(url) as engine:
        sessions = make_sessionmaker(engine)
        scheduler = FakeScheduler()
        async with scheduler:
            seed = Services(sessions=sessions, scheduler=scheduler, bus=EventBus())
            ctx = OpContext(services=seed, principal=ANONYMOUS)
            await repos.register_repo(ctx, name=_APP)
            version = meta_version(1_700_000_000, "bench")
            await releases.publish_release(
                ctx, app=_APP, meta_version=version, lain_yaml=lain_yaml(_APP)
            )
            await apps.deploy_app(ctx, name=_APP)
        bus = EventBus(sessions)
        system = OpContext(
            services=Services(sessions=sessions, scheduler=scheduler, bus=bus), principal=SYSTEM
        )
        await bus.start()
        before = bus.cursor
        runner = asyncio.create_task(bus.run(lambda batch: take_snapshots(system, batch)))
        now = datetime.now(UTC)
        started = time.perf_counter()
        for n in range(events):
            instance = InstanceState(
                job_id=_JOB,
                number=1 + n % 3,
                status=InstanceStatus.RUNNING,
                instance_id=f"i-{n}",
                ip="10.0.0.1",
                port=8080,
                node="node-1",
                started_at=now,
                restarts=n,
            )
            bus.publish_scheduler_event(
                SchedulerEvent(n + 1, EventKind.INSTANCE, _JOB, instance=instance)
            )
        await bus.drain()
        elapsed = time.perf_counter() - started
        await bus.stop()
        runner.cancel()
        async with sessions() as session:
            newest = (await eventlog.event_bounds(session)).newest or 0
    return events / elapsed, newest - before


def _persist_table(urls: dict[str, str], events: int, workdir: Path) -> Table:
    table = Table(
        f"Events persisted by one console ({events:,} instance events published at once)",
        ["database", "events/s", "rows written"],
    )
    for label, url in urls.items():
        with scratch_database(url, workdir) as scratch:
            upgrade(scratch)
            rate, rows = asyncio.run(_persist_rate(scratch, events))
        table.add(label, round(rate), rows)
    table.note(
        "Each batch (up to 500 events) is one INSERT ... RETURNING in one transaction, after "
        "one session reading the whole batch's snapshots (its apps, their procs and releases)."
    )
    return table


# -- replicas ---------------------------------------------------------------------------------


async def _two_replicas(group: Consoles) -> tuple[str, str]:
    a = await group.start("a")
    b = await group.start("b")
    async with httpx.AsyncClient(base_url=a.url, timeout=60) as http:
        await _graphql(
            http,
            "mutation($a: String!) { registerRepo(input: {name: $a}) { errors { code } } }",
            a=_APP,
        )
        await _graphql(
            http,
            "mutation($a: String!, $y: String!, $v: String!) { publishRelease(input: "
            "{app: $a, metaVersion: $v, lainYaml: $y}) { errors { code } } }",
            a=_APP,
            y=lain_yaml(_APP),
            v=meta_version(1_700_000_000, "bench"),
        )
        await _graphql(
            http,
            "mutation($a: String!) { deployApp(input: {name: $a}) { errors { code } } }",
            a=_APP,
        )
        await _scale(http, 1)  # accepted once the deploy's Nomad deployment has finished
    return a.url, b.url


async def _scale(http: httpx.AsyncClient, count: int) -> tuple[float, float]:
    """Scale until Nomad accepts (it refuses while the job's deployment runs); returns the
    perf_counter times the accepted mutation was sent and answered."""
    deadline = time.monotonic() + 60
    while True:
        sent = time.perf_counter()
        result = await _graphql(http, _SCALE, n=count)
        errors = result["data"]["scaleProc"]["errors"]  # type: ignore[index]
        if not errors:
            return sent, time.perf_counter()
        if errors[0]["code"] != "CONFLICT" or time.monotonic() > deadline:
            raise RuntimeError(f"scaleProc failed: {result}")
        await asyncio.sleep(0.2)


async def _graphql(http: httpx.AsyncClient, query: str, **variables: object) -> dict[str, object]:
    response = await http.post("/graphql", json={"query": query, "variables": variables})
    body: dict[str, object] = response.json()
    if "errors" in body:
        raise RuntimeError(f"{query[:40]}…: {body['errors']}")
    return body


async def _subscription(url: str) -> ClientConnection:
    ws = await connect(
        url.replace("http://", "ws://") + "/graphql",
        subprotocols=[Subprotocol("graphql-transport-ws")],
    )
    await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
    await ws.recv()
    payload = {"query": _SUBSCRIPTION, "variables": {"app": _APP, "proc": _PROC}}
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
    return ws


async def _arrival(ws: ClientConnection, count: int) -> float:
    """perf_counter time of the event showing the proc at `count` instances."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if message.get("type") in ("error", "complete"):
            raise RuntimeError(f"a subscription ended: {message}")
        if message.get("type") != "next":
            continue
        proc = message["payload"]["data"]["procEvents"]["proc"] or {}
        if proc.get("numInstances") == count:
            return time.perf_counter()


async def _cross_replica(url_a: str, url_b: str, rounds: int) -> tuple[Latencies, ...]:
    """Mutation on A; one subscriber on A and one on B. Milliseconds per round: mutation
    to the event on B, mutation to the event on A, B's arrival after A's (the hop), and
    the mutation's own answer."""
    to_b: list[float] = []
    to_a: list[float] = []
    hop: list[float] = []
    answered: list[float] = []
    async with httpx.AsyncClient(base_url=url_a, timeout=60) as http:
        on_a, on_b = await _subscription(url_a), await _subscription(url_b)
        await asyncio.sleep(1.0)  # both subscriptions are live before the first round
        for n in range(rounds):
            count = 2 + n % 2
            arrivals = asyncio.gather(_arrival(on_a, count), _arrival(on_b, count))
            started, answer = await _scale(http, count)
            arrived_a, arrived_b = await arrivals
            answered.append((answer - started) * 1000)
            to_a.append((arrived_a - started) * 1000)
            to_b.append((arrived_b - started) * 1000)
            hop.append((arrived_b - arrived_a) * 1000)
        await on_a.close()
        await on_b.close()
    return (
        Latencies(tuple(to_b)),
        Latencies(tuple(to_a)),
        Latencies(tuple(hop)),
        Latencies(tuple(answered)),
    )


def _scale_accepted(http: httpx.Client, count: int) -> int:
    """`_scale` for the fan-out's synchronous client: monotonic ns of the accepted send."""
    deadline = time.monotonic() + 60
    while True:
        sent = time.monotonic_ns()
        body = http.post("/graphql", json={"query": _SCALE, "variables": {"n": count}}).json()
        errors = body.get("errors") or body["data"]["scaleProc"]["errors"]
        if not errors:
            return sent
        if errors[0].get("code") != "CONFLICT" or time.monotonic() > deadline:
            raise RuntimeError(f"scaleProc failed: {body}")
        time.sleep(0.2)


def _fanout(url_a: str, url_b: str, subscribers: int, rounds: int) -> Latencies:
    """Mutation on A; half the subscribers on A, half on B: milliseconds per subscriber."""
    latencies: list[float] = []
    half = subscribers // 2
    with (
        _subscribers(url_a, half, 1, compression=True) as on_a,
        _subscribers(url_b, subscribers - half, 1, compression=True) as on_b,
        httpx.Client(base_url=url_a, timeout=60) as http,
    ):
        sent: dict[str, int] = {}  # the cursor of each round's event: when its mutation left
        for n in range(rounds):
            time.sleep(0.5)  # the previous round's instance events have come and gone
            on_a.drain()
            on_b.drain()
            at = _scale_accepted(http, 2 + n % 2)
            first = on_a.expect("complete", 30.0)[0]
            on_b.expect("complete", 30.0)
            if first is None:
                raise RuntimeError("the subscribers on A missed a round")
            sent[str(first["complete"])] = at
        for clients in (on_a, on_b):
            arrivals, errors = clients.dump()
            if errors:
                raise RuntimeError(f"subscribers failed: {errors[:3]}")
            for cursor, at in sent.items():
                latencies += [(stamp - at) / 1e6 for stamp in arrivals.get(cursor, [])]
    return Latencies(tuple(latencies))


def _replica_tables(pg_url: str, rounds: int, subscribers: int, workdir: Path) -> list[Table]:
    with scratch_database(pg_url, workdir) as scratch, shared_nomad() as nomad:
        upgrade(scratch)
        environ = {
            "LAIN_CONSOLE_DATABASE_URL": scratch,
            "LAIN_CONSOLE_BACKEND": "nomad",
            "NOMAD_ADDR": nomad.url,
            "LAIN_CONSOLE_LOG_LEVEL": "WARNING",
            "LAIN_CONSOLE_RATE_LIMIT_PER_MINUTE": "0",
        }
        with consoles(workdir / "replicas", environ) as group:
            url_a, url_b = asyncio.run(_two_replicas(group))
            cross, same, hop, answered = asyncio.run(_cross_replica(url_a, url_b, rounds))
            fan = _fanout(url_a, url_b, subscribers, max(5, rounds // 5))
    cross_table = Table(
        "scaleProc sent to replica A; one subscriber on A, one on B (ms)",
        ["measured", "rounds", "p50", "p99", "max", f"p99 <= {CROSS_TARGET_MS:.0f} ms"],
    )
    cross_table.add(
        "mutation -> event on B",
        len(cross.values),
        cross.p50,
        cross.p99,
        cross.max,
        verdict(cross.p99 <= CROSS_TARGET_MS),
    )
    cross_table.add("mutation -> event on A", len(same.values), same.p50, same.p99, same.max, "")
    cross_table.add("B's arrival after A's", len(hop.values), hop.p50, hop.p99, hop.max, "")
    cross_table.add(
        "(mutation answered)", len(answered.values), answered.p50, answered.p99, answered.max, ""
    )
    cross_table.note(
        "The event is Nomad's (the fake's event stream, read by the leading replica), so the "
        "mutation's own time and Nomad's are in the first two rows; the last is the cost of "
        "the other replica: NOTIFY, its tail's read of the log, its delivery."
    )
    fan_table = Table(
        f"{subscribers:,} subscribers over 2 replicas, mutation on A",
        ["deliveries", "p50 ms", "p99 ms", "max ms", f"p99 <= {FANOUT_TARGET_MS:.0f} ms"],
    )
    fan_table.add(len(fan.values), fan.p50, fan.p99, fan.max, verdict(fan.p99 <= FANOUT_TARGET_MS))
    return [cross_table, fan_table]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.replicas", description=__doc__)
    parser.add_argument("--postgres", default=os.environ.get("LAIN_CONSOLE_TEST_DATABASE_URL"))
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--subscribers", type=int, default=1_000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="lain-console-bench-replicas-"))
    postgres = args.postgres if (args.postgres or "").startswith("postgresql") else None
    urls = {"SQLite": ""}
    if postgres:
        urls["PostgreSQL"] = postgres
    tables = [_persist_table(urls, args.events, workdir)]
    if postgres:
        tables += _replica_tables(postgres, args.rounds, args.subscribers, workdir)
    else:
        print("replica parts skipped: pass --postgres postgresql+asyncpg://…")
    for table in tables:
        print(table.render())
        print()


if __name__ == "__main__":
    main()
