"""Part 1: REST `GET /api/v1/apps/` and GraphQL `apps { procs { instances } }` against the
bare baseline, each server in its own process over the same database file."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.baseline import APPS_QUERY
from bench.load import Budget, LoadResult, Send, run_load
from bench.processes import Served, server
from bench.report import Table, verdict
from bench.seed import dataset

__all__ = [
    "ENDPOINTS",
    "TARGETS",
    "Measured",
    "fetch_body",
    "measure",
    "measure_one",
    "request_for",
    "tables",
]

# Issue 18: uncached reads, as a ratio of the bare handler measured in the same run.
TARGETS = {"rest": 0.7, "graphql": 0.35}
ENDPOINTS = {"rest": "REST GET /api/v1/apps/", "graphql": "GraphQL apps{procs{instances}}"}


def request_for(endpoint: str) -> Send:
    if endpoint == "rest":
        return lambda client: client.get("/api/v1/apps/")
    return lambda client: client.post("/graphql", json={"query": APPS_QUERY})


@dataclass(frozen=True, slots=True)
class Loaded:
    """A load run with how busy each side was: CPU seconds per wall second (1.0 = a core)."""

    result: LoadResult
    server_cpu: float
    client_cpu: float


async def _loaded(served: Served, endpoint: str, budget: Budget, expect_bytes: int) -> Loaded:
    server_before, client_before = served.cpu_seconds(), time.process_time()
    started = time.perf_counter()
    result = await run_load(served.url, request_for(endpoint), budget, expect_bytes=expect_bytes)
    wall = time.perf_counter() - started
    return Loaded(
        result,
        server_cpu=(served.cpu_seconds() - server_before) / wall,
        client_cpu=(time.process_time() - client_before) / wall,
    )


@dataclass(frozen=True, slots=True)
class Measured:
    n: int
    endpoint: str
    body_bytes: int
    baseline: Loaded | None
    product: Loaded | None
    problem: str = ""  # why it was not timed

    @property
    def ratio(self) -> float:
        if self.baseline is None or self.product is None:
            return float("nan")
        return self.product.result.rate / self.baseline.result.rate

    @property
    def cpu_ratio(self) -> float:
        """The ratio of requests per CPU second of each server: what the req/s ratio would
        be if each had had a whole core (on a busy machine neither gets one)."""
        if self.baseline is None or self.product is None:
            return float("nan")
        return per_cpu_second(self.product) / per_cpu_second(self.baseline)


def per_cpu_second(loaded: Loaded) -> float:
    """Requests the server answered per second of its own CPU time."""
    cpu = loaded.server_cpu * loaded.result.seconds
    return loaded.result.requests / cpu if cpu else float("nan")


async def fetch_body(url: str, endpoint: str) -> bytes:
    async with httpx.AsyncClient(base_url=url, timeout=120.0) as client:
        response = await request_for(endpoint)(client)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {endpoint} answered {response.status_code}")
        return bytes(response.content)


def _same(endpoint: str, product: bytes, baseline: bytes) -> str:
    """Empty when the bodies match: REST byte for byte, GraphQL the same `data` JSON."""
    if endpoint == "rest":
        return "" if product == baseline else "REST bodies differ"
    if json.loads(product) != json.loads(baseline):
        return "GraphQL data differs"
    return ""


async def measure_one(n: int, endpoint: str, app: Served, base: Served, budget: Budget) -> Measured:
    product_body = await fetch_body(app.url, endpoint)
    baseline_body = await fetch_body(base.url, endpoint)
    problem = _same(endpoint, product_body, baseline_body)
    if problem:
        return Measured(n, endpoint, len(product_body), None, None, problem)
    baseline = await _loaded(base, endpoint, budget, len(baseline_body))
    product = await _loaded(app, endpoint, budget, len(product_body))
    return Measured(n, endpoint, len(product_body), baseline, product)


def measure(
    workdir: Path, sizes: list[int], endpoints: list[str], budget: Budget
) -> list[Measured]:
    results: list[Measured] = []
    for n in sizes:
        data = dataset(workdir, n)
        with (
            server("baseline", data_dir=data.directory, n=n) as base,
            server("app", data_dir=data.directory, n=n) as app,
        ):
            for endpoint in endpoints:
                print(f"  N={n} {endpoint}: measuring baseline, then product ...", flush=True)
                results.append(asyncio.run(measure_one(n, endpoint, app, base, budget)))
    return results


def tables(results: list[Measured], budget: Budget) -> list[Table]:
    raw = Table(
        f"1a. Throughput and latency, {budget.concurrency} concurrent clients "
        f"(warm-up {budget.warmup} requests; then {budget.max_requests} requests or "
        f"{budget.max_seconds:.0f} s, whichever first)",
        [
            "N",
            "endpoint",
            "server",
            "body KB",
            "requests",
            "req/s",
            "p50 ms",
            "p99 ms",
            "server CPU",
            "client CPU",
        ],
    )
    ratios = Table(
        "1b. Product as a ratio of the bare Starlette baseline (1.0 = as fast)",
        [
            "N",
            "endpoint",
            "req/s ratio",
            "p50 ratio",
            "p99 ratio",
            "CPU ratio",
            "target",
            "verdict",
        ],
    )
    for m in results:
        if m.baseline is None or m.product is None:
            ratios.add(
                m.n, ENDPOINTS[m.endpoint], "-", "-", "-", "-", "-", f"not timed: {m.problem}"
            )
            continue
        for name, loaded in (("baseline", m.baseline), ("product", m.product)):
            result = loaded.result
            raw.add(
                m.n,
                ENDPOINTS[m.endpoint],
                name,
                m.body_bytes / 1024,
                result.requests,
                result.rate,
                result.latencies.p50,
                result.latencies.p99,
                f"{loaded.server_cpu:.0%}",
                f"{loaded.client_cpu:.0%}",
            )
        target = TARGETS[m.endpoint]
        ratios.add(
            m.n,
            ENDPOINTS[m.endpoint],
            m.ratio,
            m.baseline.result.latencies.p50 / m.product.result.latencies.p50,
            m.baseline.result.latencies.p99 / m.product.result.latencies.p99,
            m.cpu_ratio,
            f">= {target}",
            verdict(m.ratio >= target),
        )
    raw.note("Bodies verified equal before timing (REST byte for byte, GraphQL the same data).")
    raw.note("GraphQL returns one page: the first 100 apps (the connection's largest page).")
    raw.note(
        "CPU = CPU seconds per wall second over the run (100% = one core): the server "
        "saturating its core while the load generator does not shows the server is the limit."
    )
    ratios.note("p50/p99 ratio = baseline latency / product latency.")
    ratios.note(
        "CPU ratio = product / baseline requests per second of server CPU time: the req/s "
        "ratio with each server given a whole core (it differs when the machine is busy)."
    )
    return [raw, ratios]
