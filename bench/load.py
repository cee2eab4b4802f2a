"""The load generator: httpx.AsyncClient, a fixed number of workers, bounded by count and
by time, after a warm-up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from bench.report import Latencies

__all__ = ["Budget", "LoadResult", "Send", "run_load"]

Send = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


@dataclass(frozen=True, slots=True)
class Budget:
    """How much load one measurement gets: whichever bound is reached first ends it."""

    concurrency: int = 16
    warmup: int = 16  # requests, not recorded
    max_requests: int = 2000
    max_seconds: float = 10.0
    min_requests: int = 20  # keep going past max_seconds until this many (slow targets)


@dataclass(frozen=True, slots=True)
class LoadResult:
    requests: int
    seconds: float
    latencies: Latencies

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


async def run_load(base_url: str, send: Send, budget: Budget, *, expect_bytes: int) -> LoadResult:
    """Drive `send` from `budget.concurrency` workers; every answer must be a 200 of
    `expect_bytes` bytes (the body verified equal beforehand), or the run stops."""
    limits = httpx.Limits(
        max_connections=budget.concurrency, max_keepalive_connections=budget.concurrency
    )
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120.0) as client:

        async def one() -> float:
            started = time.perf_counter()
            response = await send(client)
            elapsed = time.perf_counter() - started
            if response.status_code != 200 or len(response.content) != expect_bytes:
                raise RuntimeError(
                    f"unexpected answer: {response.status_code}, {len(response.content)} bytes"
                )
            return elapsed

        warm = list(range(budget.warmup))

        async def warm_worker() -> None:
            while warm:
                warm.pop()
                await one()

        await asyncio.gather(*(warm_worker() for _ in range(budget.concurrency)))

        latencies: list[float] = []
        started = time.perf_counter()
        deadline = started + budget.max_seconds
        issued = 0

        def more() -> bool:
            if issued >= budget.max_requests:
                return False
            return time.perf_counter() < deadline or issued < budget.min_requests

        async def worker() -> None:
            nonlocal issued
            while more():
                issued += 1
                latencies.append(await one())

        await asyncio.gather(*(worker() for _ in range(budget.concurrency)))
        seconds = time.perf_counter() - started
    return LoadResult(
        requests=len(latencies),
        seconds=seconds,
        latencies=Latencies(tuple(value * 1000 for value in latencies)),
    )
