"""Part 2: SQL statements per request, counted in-process with a `before_cursor_execute`
listener on every SQLAlchemy engine, for N = 1 and the run's sizes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import event
from sqlalchemy.engine import Engine
from starlette.applications import Starlette

from bench.baseline import APPS_QUERY, create_baseline
from bench.config import bench_settings
from bench.report import Table, verdict
from bench.scheduler import LoadedScheduler
from bench.seed import dataset
from bench.throughput import ENDPOINTS
from server.app import create_app

__all__ = ["Counted", "StatementCounter", "count", "table"]

_REPEAT = 3  # requests counted per cell; the count must be the same for each


@dataclass(frozen=True, slots=True)
class Counted:
    n: int
    endpoint: str
    product: list[int]  # statements of each counted request
    baseline: list[int]


class StatementCounter:
    """Counts every statement any SQLAlchemy engine of this process sends while entered.

    The listener is on the Engine class: it reaches the sync engine inside every AsyncEngine,
    including the one an app's lifespan creates.
    """

    def __init__(self) -> None:
        self.statements = 0

    def __call__(self, *args: Any) -> None:
        self.statements += 1

    def __enter__(self) -> StatementCounter:
        event.listen(Engine, "before_cursor_execute", self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        event.remove(Engine, "before_cursor_execute", self)


async def _count(app: Starlette, endpoint: str, counter: StatementCounter) -> list[int]:
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(manager.app), base_url="http://bench"
        ) as client,
    ):

        async def request() -> None:
            if endpoint == "rest":
                response = await client.get("/api/v1/apps/")
            else:
                response = await client.post("/graphql", json={"query": APPS_QUERY})
            response.raise_for_status()

        await request()  # warm-up: pool connections, caches
        counts = []
        for _ in range(_REPEAT):
            before = counter.statements
            await request()
            counts.append(counter.statements - before)
    return counts


def count(workdir: Path, sizes: list[int], endpoints: list[str]) -> list[Counted]:
    with StatementCounter() as counter:
        results = []
        for n in sorted({1, *sizes}):
            data = dataset(workdir, n)
            settings = bench_settings(data.directory, data.url)
            for endpoint in endpoints:
                product = create_app(settings, scheduler=LoadedScheduler(data.jobs()))
                baseline = create_baseline(data.url, LoadedScheduler(data.jobs()))
                results.append(
                    Counted(
                        n,
                        endpoint,
                        product=asyncio.run(_count(product, endpoint, counter)),
                        baseline=asyncio.run(_count(baseline, endpoint, counter)),
                    )
                )
        return results


def table(results: list[Counted]) -> Table:
    sizes = sorted({r.n for r in results})
    found = Table(
        "2. SQL statements per request (before_cursor_execute, in-process, after a warm-up)",
        ["endpoint", "server", *[f"N={n}" for n in sizes], "constant in N"],
    )
    for endpoint in dict.fromkeys(r.endpoint for r in results):
        rows = {r.n: r for r in results if r.endpoint == endpoint}
        for server in ("product", "baseline"):
            per_n = [_one(getattr(rows[n], server)) for n in sizes]
            constant = len(set(per_n)) == 1 and all(isinstance(v, int) for v in per_n)
            found.add(ENDPOINTS[endpoint], server, *per_n, verdict(constant))
    found.note("A cell is the statements of one request (3 counted; 'a..b' if they varied).")
    return found


def _one(counts: list[int]) -> int | str:
    low, high = min(counts), max(counts)
    return low if low == high else f"{low}..{high}"
