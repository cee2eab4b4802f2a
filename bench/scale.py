"""Scale mutations: `PATCH /api/v1/apps/<a>/procs/web/ {"num_instances": 2 or 1}` from 16
concurrent clients, each on an app of its own, against the product on its local backend
with real processes (`bench.localapps`).

Each client alternates 2 and 1 on its app, so every request changes the desired state and
starts or stops a process. Every answer must be LAIN's 202. Afterwards the stored count of
every app must be the last one its client sent, the app's audit log must hold one scale
entry per answered request, and the processes must follow (the running instances reach
the count) within a deadline. The original LAIN console's figures, measured on this
machine with the same load (issue 18), are printed beside ours as the anchor.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.load import Budget
from bench.localapps import LocalApps, app_name, local_console, tiny_yaml
from bench.report import Latencies, Table, verdict

__all__ = [
    "ORIGINAL_P99_MS",
    "ORIGINAL_RATE",
    "TARGET_P99_MS",
    "TARGET_RATE",
    "ScaleResult",
    "measure",
    "table",
]

TARGET_RATE = 200.0  # req/s
TARGET_P99_MS = 100.0
# The original LAIN console (Django, one gunicorn sync worker, deployd in-process).
ORIGINAL_RATE = (178.0, 191.0)
ORIGINAL_P99_MS = (95.0, 110.0)
_FOLLOW_DEADLINE = 120.0  # seconds for the processes to reach the last counts


@dataclass(frozen=True, slots=True)
class ScaleResult:
    apps: int
    requests: int
    seconds: float
    latencies: Latencies
    server_cpu: float  # CPU seconds per wall second of the console during the run
    cpu_seconds: float  # of the console, during the timed requests
    problems: tuple[str, ...]  # what did not agree afterwards; empty when all did
    followed_seconds: float  # how long the processes took to reach the last counts

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        """The console's CPU per request (its processes' work included, as it happens)."""
        return self.cpu_seconds / self.requests * 1000 if self.requests else float("nan")

    @property
    def met(self) -> bool:
        return (
            not self.problems and self.rate >= TARGET_RATE and self.latencies.p99 <= TARGET_P99_MS
        )


def _path(app: str) -> str:
    return f"/api/v1/apps/{app}/procs/web/"


@dataclass
class _Run:
    latencies: list[float]  # seconds, of the timed requests
    seconds: float
    cpu_seconds: float  # the console's, during the timed requests
    last: dict[str, int]  # the last count each app was given
    answered: dict[str, int]  # requests answered per app, the warm-up's included


async def _load(local: LocalApps, budget: Budget) -> _Run:
    limits = httpx.Limits(max_connections=len(local.apps))
    last: dict[str, int] = {}
    answered = dict.fromkeys(local.apps, 0)
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=local.served.url, limits=limits, timeout=60) as client:

        async def one(app: str) -> float:
            count = 2 if last.get(app, 1) == 1 else 1
            started = time.perf_counter()
            response = await client.patch(_path(app), json={"num_instances": count})
            elapsed = time.perf_counter() - started
            if response.status_code != 202:
                raise RuntimeError(f"PATCH {app}: {response.status_code} {response.text[:300]}")
            last[app] = count
            answered[app] += 1
            return elapsed

        per_client_warmup = max(1, budget.warmup // len(local.apps))
        for _ in range(per_client_warmup):
            await asyncio.gather(*(one(app) for app in local.apps))

        cpu_before = local.served.cpu_seconds()
        started = time.perf_counter()
        deadline = started + budget.max_seconds
        issued = 0

        def more() -> bool:
            if issued >= budget.max_requests:
                return False
            return time.perf_counter() < deadline or issued < budget.min_requests

        async def client_of(app: str) -> None:
            nonlocal issued
            while more():
                issued += 1
                latencies.append(await one(app))

        await asyncio.gather(*(client_of(app) for app in local.apps))
        seconds = time.perf_counter() - started
        cpu = local.served.cpu_seconds() - cpu_before
    return _Run(latencies, seconds, cpu, last, answered)


async def _check(local: LocalApps, run: _Run) -> list[str]:
    """What disagrees: the stored counts (read through the API) and the audit entries (read
    from the database file) with what was answered."""
    problems: list[str] = []
    async with httpx.AsyncClient(base_url=local.served.url, timeout=60) as client:
        for app in local.apps:
            body = (await client.get(_path(app))).json()
            stored = body["proc"]["numinstances"]
            if stored != run.last[app]:
                problems.append(f"{app}: stored {stored}, last answered {run.last[app]}")
    with sqlite3.connect(local.data_dir / "lain-console.db") as db:
        audited = dict(
            db.execute(
                "SELECT app, count(*) FROM audit_log WHERE operation = 'SCALE' GROUP BY app"
            ).fetchall()
        )
    for app, answered in run.answered.items():
        if audited.get(app, 0) != answered:
            problems.append(f"{app}: {audited.get(app, 0)} scale audit entries, {answered} answers")
    return problems


async def _followed(local: LocalApps, last: dict[str, int]) -> float:
    """Seconds until the running processes match the last counts (inf: they did not)."""
    query = '{ app(name: "%s") { procs { name instances { status } } } }'
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=local.served.url, timeout=60) as client:
        pending = set(local.apps)
        while pending and time.monotonic() - started < _FOLLOW_DEADLINE:
            for app in sorted(pending):
                data = (await client.post("/graphql", json={"query": query % app})).json()
                (web,) = [p for p in data["data"]["app"]["procs"] if p["name"] == "web"]
                running = [i for i in web["instances"] if i["status"] == "RUNNING"]
                if len(running) == len(web["instances"]) == last[app]:
                    pending.discard(app)
            if pending:
                await asyncio.sleep(0.2)
        return time.monotonic() - started if not pending else float("inf")


def measure(workdir: Path, budget: Budget, *, apps: int = 16) -> ScaleResult:
    names = [app_name(i) for i in range(apps)]
    with local_console(workdir, "scale", {n: tiny_yaml(n, web=1) for n in names}) as local:
        run = asyncio.run(_load(local, budget))
        followed = asyncio.run(_followed(local, run.last))
        problems = asyncio.run(_check(local, run))
        if followed == float("inf"):
            problems.append(f"the processes did not reach the counts in {_FOLLOW_DEADLINE:.0f}s")
    return ScaleResult(
        apps=apps,
        requests=len(run.latencies),
        seconds=run.seconds,
        latencies=Latencies(tuple(v * 1000 for v in run.latencies)),
        server_cpu=run.cpu_seconds / run.seconds,
        cpu_seconds=run.cpu_seconds,
        problems=tuple(problems),
        followed_seconds=followed,
    )


def table(result: ScaleResult) -> Table:
    found = Table(
        f'Scale mutation: PATCH /api/v1/apps/<a>/procs/web/ {{"num_instances": 2/1}}, '
        f"{result.apps} concurrent clients on {result.apps} apps, local backend, real processes",
        [
            "server",
            "requests",
            "req/s",
            "p50 ms",
            "p99 ms",
            "server CPU",
            "CPU ms/req",
            "target",
            "verdict",
        ],
    )
    low, high = ORIGINAL_RATE
    found.add(
        "original LAIN console (issue 18)",
        "-",
        f"{low:.0f}-{high:.0f}",
        "-",
        f"{ORIGINAL_P99_MS[0]:.0f}-{ORIGINAL_P99_MS[1]:.0f}",
        "-",
        "5.2-5.6",
        "",
        "anchor",
    )
    found.add(
        "lain-console",
        result.requests,
        result.rate,
        result.latencies.p50,
        result.latencies.p99,
        f"{result.server_cpu:.0%}",
        result.cpu_ms,
        f">= {TARGET_RATE:.0f} req/s, p99 <= {TARGET_P99_MS:.0f} ms",
        verdict(result.met),
    )
    found.note(
        f"lain-console / original req/s: {result.rate / high:.2f}-{result.rate / low:.2f}; "
        f"processes reached the last counts {result.followed_seconds:.1f} s after the run"
    )
    found.note(
        "The original's CPU ms/req is its wall time per request: one sync worker, one request "
        f"at a time. At {result.cpu_ms:.1f} ms a request, one core serves at most "
        f"{1000 / result.cpu_ms:.0f} req/s: on a machine whose cores are shared, req/s and "
        "latency fall with the share, CPU ms/req does not."
    )
    for problem in result.problems or ("stored counts, audit entries and processes agree",):
        found.note(problem)
    return found


def main() -> None:
    """`python -m bench.scale [--seconds S]`: this part alone."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m bench.scale")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--apps", type=int, default=16)
    args = parser.parse_args()
    budget = Budget(concurrency=args.apps, warmup=args.apps * 2, max_seconds=args.seconds)
    workdir = Path(tempfile.gettempdir()) / "lain-console-bench"
    workdir.mkdir(parents=True, exist_ok=True)
    print(table(measure(workdir, budget, apps=args.apps)).render())


if __name__ == "__main__":
    main()
