"""What one SQLite statement costs the console: `python -m bench.sqltrips [--n 100]`.

Two tables, in-process on the seeded dataset (bench.seed):

- trips to aiosqlite's thread per request, by call, for one app's and one proc's REST
  object (bench.objects' requests): every call on an aiosqlite connection is one trip from
  the event loop to the connection's thread and back;
- CPU per statement (this process's CPU, all threads) for the query that reads one app's
  procs with their releases, its columns named through the ORM classes and through the
  tables, interleaved three times.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiosqlite.core
import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import Select, select

from bench.config import bench_settings
from bench.objects import OBJECTS
from bench.report import Table
from bench.scheduler import LoadedScheduler
from bench.seed import Dataset, dataset
from server.app import create_app
from store.engine import make_engine, make_sessionmaker
from store.models import Proc, Release

__all__ = ["main", "trips"]

_REQUESTS = 20
_STATEMENTS = 2000


@contextmanager
def trips() -> Iterator[collections.Counter[str]]:
    """Counts the calls made on aiosqlite's thread while entered, by function name."""
    counted: collections.Counter[str] = collections.Counter()
    original = aiosqlite.core.Connection._execute

    async def counting(self: aiosqlite.Connection, fn: Callable[..., Any], *a: Any) -> Any:
        counted[getattr(fn, "__name__", "other")] += 1
        return await original(self, fn, *a)

    aiosqlite.core.Connection._execute = counting  # type: ignore[method-assign]
    try:
        yield counted
    finally:
        aiosqlite.core.Connection._execute = original  # type: ignore[method-assign]


async def _trips_per_request(data: Dataset) -> Table:
    app = create_app(
        bench_settings(data.directory, data.url), scheduler=LoadedScheduler(data.jobs())
    )
    table = Table("Trips to aiosqlite's thread per request", ["request", "trips", "by call"])
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(manager.app), base_url="http://b") as c,
    ):
        for name, target in OBJECTS.items():
            (await c.get(target.path)).raise_for_status()  # warm-up
            with trips() as counted:
                for _ in range(_REQUESTS):
                    (await c.get(target.path)).raise_for_status()
            calls = ", ".join(f"{k} {v / _REQUESTS:g}" for k, v in sorted(counted.items()))
            table.add(name, f"{sum(counted.values()) / _REQUESTS:g}", calls)
    return table


def _orm_columns(app_id: int) -> Select[Any]:
    return (
        select(Proc.app_id, Proc.name, Proc.meta_version, Release.lain_yaml)
        .outerjoin(
            Release,
            (Release.app_id == Proc.app_id) & (Release.meta_version == Proc.meta_version),
        )
        .where(Proc.app_id == app_id)
        .order_by(Proc.id)
    )


def _table_columns(app_id: int) -> Select[Any]:
    p, r = Proc.__table__.c, Release.__table__.c
    return (
        select(p.app_id, p.name, p.meta_version, r.lain_yaml)
        .outerjoin(Release.__table__, (r.app_id == p.app_id) & (r.meta_version == p.meta_version))
        .where(p.app_id == app_id)
        .order_by(p.id)
    )


async def _cpu_per_statement(data: Dataset) -> Table:
    engine = make_engine(data.url)
    sessions = make_sessionmaker(engine)
    figures: dict[str, list[float]] = {"ORM attributes": [], "table columns": []}
    queries: dict[str, Callable[[int], Select[Any]]] = {
        "ORM attributes": _orm_columns,
        "table columns": _table_columns,
    }
    try:
        async with sessions() as session:

            async def run(query: Callable[[int], Select[Any]]) -> None:
                for _ in range(_STATEMENTS):
                    (await session.execute(query(1))).all()

            for query in queries.values():
                await run(query)  # warm-up: compiled-statement caches, pages in memory
            for _ in range(3):
                for name, query in queries.items():
                    started = time.process_time()
                    await run(query)
                    figures[name].append((time.process_time() - started) / _STATEMENTS * 1e6)
    finally:
        await engine.dispose()
    table = Table(
        "CPU per statement (µs, all threads): one app's procs with their releases",
        ["columns named through", "3 runs", "best"],
    )
    for name, values in figures.items():
        table.add(name, " / ".join(f"{v:.0f}" for v in values), f"{min(values):.0f}")
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sqltrips", description=__doc__)
    parser.add_argument("--n", type=int, default=100, help="apps in the dataset (default 100)")
    parser.add_argument(
        "--workdir", default=str(Path(tempfile.gettempdir()) / "lain-console-bench")
    )
    args = parser.parse_args(argv)
    data = dataset(Path(args.workdir), args.n)  # seeds outside any event loop (alembic)
    for table in (asyncio.run(_trips_per_request(data)), asyncio.run(_cpu_per_statement(data))):
        print(table.render())
        print()


if __name__ == "__main__":
    main()
