"""The cost of metrics per request: the product with and without LAIN_CONSOLE_METRICS.

    python -m bench.metrics                  # N = 1 (the cheapest requests: worst case)
    python -m bench.metrics --n 100 --seconds 5 --rounds 3

Both servers run at once over the same seeded database; each round measures them one after
the other, alternating which goes first, so drift of a busy machine hits both alike. The
figure is the ratio of summed req/s, with metrics over without (1.0 = no cost).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from bench.load import Budget, run_load
from bench.processes import Served, server
from bench.report import Table
from bench.seed import dataset
from bench.throughput import ENDPOINTS, fetch_body, request_for

__all__ = ["main"]


async def _rate(served: Served, endpoint: str, budget: Budget) -> float:
    body = await fetch_body(served.url, endpoint)
    result = await run_load(served.url, request_for(endpoint), budget, expect_bytes=len(body))
    return result.rate


def measure(workdir: Path, n: int, budget: Budget, rounds: int) -> Table:
    data = dataset(workdir, n)
    table = Table(
        f"Metrics overhead, N={n}, {budget.concurrency} concurrent clients, {rounds} rounds "
        f"of up to {budget.max_seconds:.0f} s each",
        ["endpoint", "req/s with", "req/s without", "ratio with/without"],
    )
    with (
        server("app", data_dir=data.directory, n=n) as metered,
        server("app", data_dir=data.directory, n=n, metrics=False) as bare,
    ):
        for endpoint in ENDPOINTS:
            totals = {"with": 0.0, "without": 0.0}
            for round_ in range(rounds):
                order = [("with", metered), ("without", bare)]
                for label, served in order if round_ % 2 == 0 else reversed(order):
                    totals[label] += asyncio.run(_rate(served, endpoint, budget))
            table.add(
                ENDPOINTS[endpoint],
                totals["with"] / rounds,
                totals["without"] / rounds,
                totals["with"] / totals["without"],
            )
    table.note("With metrics: every request timed by route; GraphQL by operation.")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.metrics")
    parser.add_argument("--n", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--workdir", default=str(Path(tempfile.gettempdir()) / "lain-console-bench")
    )
    args = parser.parse_args()
    budget = Budget(concurrency=args.concurrency, max_requests=1_000_000, max_seconds=args.seconds)
    print(measure(Path(args.workdir), args.n, budget, args.rounds).render(), flush=True)


if __name__ == "__main__":
    main()
