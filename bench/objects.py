"""Part `objects`: one app and one proc over REST, uncached, against the original console.

The anchor is the original LAIN console (Python 2.7, Django 1.8, one gunicorn sync worker,
its etcd/deployd/registry in-process) measured side by side on this machine with the same
data and 16 concurrent clients (issue 18): 330-350 req/s for one app, 378-406 for one proc.
The target is 1.5 times its better figure. The product runs in its own process as in part
1; the figures are absolute, so they only compare on a machine as quiet as that one was.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.load import Budget, LoadResult, run_load
from bench.processes import server
from bench.report import Table, verdict
from bench.seed import PROCS, app_name, dataset

__all__ = ["OBJECTS", "ObjectMeasured", "measure", "table"]


@dataclass(frozen=True, slots=True)
class _Object:
    title: str
    path: str
    original: tuple[float, float]  # the original console's req/s, lowest and highest run
    target: float  # req/s


_APP = app_name(1)
OBJECTS = {
    "app": _Object(f"REST GET /api/v1/apps/{_APP}/", f"/api/v1/apps/{_APP}/", (330, 350), 520),
    "proc": _Object(
        f"REST GET /api/v1/apps/{_APP}/procs/{PROCS[0]}/",
        f"/api/v1/apps/{_APP}/procs/{PROCS[0]}/",
        (378, 406),
        600,
    ),
}


@dataclass(frozen=True, slots=True)
class ObjectMeasured:
    n: int
    kind: str
    body_bytes: int
    result: LoadResult
    server_cpu: float
    client_cpu: float

    @property
    def per_cpu_second(self) -> float:
        """Requests per second of the server's CPU time: its req/s with a whole core."""
        cpu = self.server_cpu * self.result.seconds
        return self.result.requests / cpu if cpu else float("nan")

    @property
    def met(self) -> bool:
        return self.result.rate >= OBJECTS[self.kind].target


def measure(workdir: Path, n: int, budget: Budget) -> list[ObjectMeasured]:
    data = dataset(workdir, n)
    found: list[ObjectMeasured] = []
    with server("app", data_dir=data.directory, n=n) as app:
        for kind, wanted in OBJECTS.items():
            print(f"  N={n} {wanted.title}: measuring product ...", flush=True)

            async def run(path: str = wanted.path) -> tuple[int, LoadResult]:
                async with httpx.AsyncClient(base_url=app.url, timeout=60.0) as client:
                    first = await client.get(path)
                if first.status_code != 200:
                    raise RuntimeError(f"{path} answered {first.status_code}")
                size = len(first.content)
                result = await run_load(
                    app.url, lambda client: client.get(path), budget, expect_bytes=size
                )
                return size, result

            server_before, client_before = app.cpu_seconds(), time.process_time()
            started = time.perf_counter()
            size, result = asyncio.run(run())
            wall = time.perf_counter() - started
            found.append(
                ObjectMeasured(
                    n=n,
                    kind=kind,
                    body_bytes=size,
                    result=result,
                    server_cpu=(app.cpu_seconds() - server_before) / wall,
                    client_cpu=(time.process_time() - client_before) / wall,
                )
            )
    return found


def table(results: list[ObjectMeasured], budget: Budget) -> Table:
    shown = Table(
        f"1c. One app, one proc (REST, uncached), {budget.concurrency} concurrent clients, "
        "beside the original LAIN console's figures on this machine",
        [
            "N",
            "request",
            "body KB",
            "requests",
            "req/s",
            "p50 ms",
            "p99 ms",
            "server CPU",
            "client CPU",
            "req/CPU-s",
            "original req/s",
            "/ original",
            "target",
            "verdict",
        ],
    )
    for m in results:
        wanted = OBJECTS[m.kind]
        low, high = wanted.original
        shown.add(
            m.n,
            wanted.title,
            m.body_bytes / 1024,
            m.result.requests,
            m.result.rate,
            m.result.latencies.p50,
            m.result.latencies.p99,
            f"{m.server_cpu:.0%}",
            f"{m.client_cpu:.0%}",
            m.per_cpu_second,
            f"{low:.0f}-{high:.0f}",
            f"{m.result.rate / high:.2f}-{m.result.rate / low:.2f}",
            f">= {wanted.target:.0f} req/s",
            verdict(m.met),
        )
    shown.note(
        "Original: LAIN's console (Python 2.7, Django 1.8, one gunicorn sync worker, its "
        "etcd/deployd/registry in-process), same data, 16 clients (issue 18)."
    )
    shown.note("req/CPU-s = requests per second of the server's CPU time (a whole core's req/s).")
    shown.note(
        "Absolute req/s: comparable to the original's only on an otherwise idle machine; "
        "client CPU near 100% means the load generator, not the server, was the limit."
    )
    return shown
