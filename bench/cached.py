"""Part `cached`: the same reads as part 1, repeated with no change in between, against a
product with its read cache on (`LAIN_CONSOLE_READ_CACHE_BYTES`), as a ratio of the bare
baseline measured in the same run. The baseline reads the database on every request; the
product reads one row (the stored state version) and answers from the cache."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.load import Budget
from bench.processes import server
from bench.report import Table, verdict
from bench.seed import dataset
from bench.throughput import ENDPOINTS, Measured, measure_one

__all__ = ["TARGET", "measure", "table"]

TARGET = 1.0


def measure(
    workdir: Path, sizes: list[int], endpoints: list[str], budget: Budget
) -> list[Measured]:
    results: list[Measured] = []
    for n in sizes:
        data = dataset(workdir, n)
        with (
            server("baseline", data_dir=data.directory, n=n) as base,
            server("app", data_dir=data.directory, n=n, read_cache=True) as app,
        ):
            for endpoint in endpoints:
                print(f"  N={n} {endpoint} repeated: baseline, then cached product ...", flush=True)
                results.append(asyncio.run(measure_one(n, endpoint, app, base, budget)))
    return results


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
