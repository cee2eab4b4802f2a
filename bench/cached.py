"""Part `cached`: the same reads as part 1, repeated with no change in between, against a
product with its read cache on (`LAIN_CONSOLE_READ_CACHE_BYTES`), as a ratio of the bare
baseline measured in the same run. The baseline reads the database on every request; the
product reads one row (the stored state version) and answers from the cache.

And what the cache costs when it cannot help: the same reads, each one a miss (every request
names another Host, which is part of the key and changes nothing in the answer), against the
product with the cache off, in the same run."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.baseline import APPS_QUERY
from bench.load import Budget, LoadResult, Send, run_load
from bench.processes import Served, server
from bench.report import Table, verdict
from bench.seed import dataset
from bench.throughput import ENDPOINTS, Measured, fetch_body, measure_one, request_for

__all__ = ["TARGET", "Missed", "cost_table", "measure", "table"]

TARGET = 1.0


@dataclass(frozen=True, slots=True)
class Missed:
    """The same reads against the product with the cache off, and with it on but missing."""

    n: int
    endpoint: str
    off: LoadResult
    missing: LoadResult

    @property
    def ratio(self) -> float:
        return self.missing.rate / self.off.rate if self.off.rate else float("nan")


def measure(
    workdir: Path, sizes: list[int], endpoints: list[str], budget: Budget
) -> tuple[list[Measured], list[Missed]]:
    results: list[Measured] = []
    misses: list[Missed] = []
    for n in sizes:
        data = dataset(workdir, n)
        with (
            server("baseline", data_dir=data.directory, n=n) as base,
            server("app", data_dir=data.directory, n=n, read_cache=True) as app,
            server("app", data_dir=data.directory, n=n) as uncached,
        ):
            for endpoint in endpoints:
                print(f"  N={n} {endpoint} repeated: baseline, then cached product ...", flush=True)
                results.append(asyncio.run(measure_one(n, endpoint, app, base, budget)))
                print(f"  N={n} {endpoint}: cache off, then every read a miss ...", flush=True)
                misses.append(asyncio.run(_measure_misses(n, endpoint, app, uncached, budget)))
    return results, misses


async def _measure_misses(
    n: int, endpoint: str, cached: Served, uncached: Served, budget: Budget
) -> Missed:
    size = len(await fetch_body(uncached.url, endpoint))
    off = await run_load(uncached.url, request_for(endpoint), budget, expect_bytes=size)
    missing = await run_load(cached.url, _each_a_miss(endpoint), budget, expect_bytes=size)
    return Missed(n, endpoint, off, missing)


def _each_a_miss(endpoint: str) -> Send:
    hosts = (f"miss-{i}.bench" for i in itertools.count())

    def send(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        headers = {"host": next(hosts)}
        if endpoint == "rest":
            return client.get("/api/v1/apps/", headers=headers)
        return client.post("/graphql", json={"query": APPS_QUERY}, headers=headers)

    return send


def table(results: list[Measured]) -> Table:
    found = Table(
        "1c. The same reads repeated with no change in between, read cache on: product as a "
        "ratio of the bare baseline (which reads the database every time)",
        [
            "N",
            "endpoint",
            "baseline req/s",
            "cached req/s",
            "req/s ratio",
            "p99 ms",
            "target",
            "verdict",
        ],
    )
    for m in results:
        if m.baseline is None or m.product is None:
            found.add(
                m.n, ENDPOINTS[m.endpoint], "-", "-", "-", "-", "-", f"not timed: {m.problem}"
            )
            continue
        found.add(
            m.n,
            ENDPOINTS[m.endpoint],
            m.baseline.result.rate,
            m.product.result.rate,
            m.ratio,
            m.product.result.latencies.p99,
            f">= {TARGET}",
            verdict(m.ratio >= TARGET),
        )
    found.note(
        "Bodies verified equal before timing. Every cached request still authenticates its "
        "caller and reads the stored state version (one single-row SELECT), so an answer is "
        "never served after a write on any console."
    )
    return found


def cost_table(misses: list[Missed]) -> Table:
    found = Table(
        "1d. What the read cache costs when every read misses: cache on (each request another "
        "Host, so another key) as a ratio of the product with the cache off",
        ["N", "endpoint", "cache off req/s", "all-miss req/s", "ratio", "p50 ms off/miss"],
    )
    for m in misses:
        found.add(
            m.n,
            ENDPOINTS[m.endpoint],
            m.off.rate,
            m.missing.rate,
            m.ratio,
            f"{m.off.latencies.p50:.0f}/{m.missing.latencies.p50:.0f}",
        )
    found.note(
        "A miss adds the version read, a digest of the body and keeping it (the LRU evicts as "
        "it fills); no target: printed to show the price of the layer."
    )
    return found
