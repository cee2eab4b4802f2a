"""Where a request's time goes: `python -m bench.profile {rest,graphql,app,proc} [--n 100]`.

`app` and `proc` are one app's and one proc's REST object (bench.objects' requests).

Runs the product in-process (ASGI transport, no sockets) over a seeded dataset, profiles a
few requests with cProfile after a warm-up, and prints the functions by cumulative time,
restricted to our code and the libraries that matter (paths given with `--only`).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import tempfile
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from bench.baseline import APPS_QUERY
from bench.config import bench_settings
from bench.objects import OBJECTS
from bench.scheduler import LoadedScheduler
from bench.seed import Dataset, dataset
from server.app import create_app

__all__ = ["main"]


async def _profile(endpoint: str, data: Dataset, requests: int) -> cProfile.Profile:
    app = create_app(
        bench_settings(data.directory, data.url), scheduler=LoadedScheduler(data.jobs())
    )
    profiler = cProfile.Profile()
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(manager.app), base_url="http://bench"
        ) as client,
    ):

        async def request() -> None:
            if endpoint == "rest":
                response = await client.get("/api/v1/apps/")
            elif endpoint in OBJECTS:
                response = await client.get(OBJECTS[endpoint].path)
            else:
                response = await client.post("/graphql", json={"query": APPS_QUERY})
            response.raise_for_status()

        await request()
        profiler.enable()
        for _ in range(requests):
            await request()
        profiler.disable()
    return profiler


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("endpoint", choices=("rest", "graphql", *OBJECTS))
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument(
        "--only",
        default="rest_compat|resolvers|schema|server|store|strawberry|graphql|sqlalchemy|json",
        help="a regular expression the listed functions' paths must match",
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "lain-console-bench"
    )
    args = parser.parse_args()
    data = dataset(args.workdir, args.n)  # outside the loop: alembic runs one of its own
    profiler = asyncio.run(_profile(args.endpoint, data, args.requests))
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"{args.requests} requests, {total / args.requests * 1000:.1f} ms each under cProfile")
    stats.sort_stats("cumulative").print_stats(args.only, args.top)
    print(out.getvalue())


if __name__ == "__main__":
    main()
