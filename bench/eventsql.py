"""Part 2b: SQL statements the server sends to deliver one subscription event, by number of
subscribers. In-process (uvicorn on a loopback port, real websockets) so the statement
counter sees the server's engine; the event is a backend one (an instance restart in the
scheduler), which itself sends no SQL."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from backends.types import InstanceAction
from bench.config import bench_settings
from bench.fanout import SUBSCRIPTION
from bench.report import Table
from bench.scheduler import LoadedScheduler
from bench.seed import Dataset, app_name, dataset
from bench.sqlcount import StatementCounter
from server.app import create_app
from tests.live import Subscriber, serve, subscribe

__all__ = ["count_per_event", "table"]

_SETTLE = 0.2  # seconds for stragglers after every subscriber has the event
# A subscription starts at the bus's cursor when its resolver first runs, which the protocol
# does not acknowledge; this long after the last subscribe message every one has run.
_SUBSCRIBED = 0.5


async def _deliver(scheduler: LoadedScheduler, job_id: str, subscribers: list[Subscriber]) -> None:
    await scheduler.control(job_id, InstanceAction.RESTART, 1)
    await asyncio.gather(*(s.next_event() for s in subscribers))
    await asyncio.sleep(_SETTLE)


async def _count(data: Dataset, sizes: list[int]) -> dict[int, int]:
    scheduler = LoadedScheduler(data.jobs())
    app = create_app(bench_settings(data.directory, data.url), scheduler=scheduler)
    app_, proc = app_name(0), "web"
    job_id = f"{app_}.web.{proc}"
    found: dict[int, int] = {}
    with StatementCounter() as counter:
        async with serve(app) as url:
            for size in sizes:
                async with contextlib.AsyncExitStack() as stack:
                    subscribers = [
                        await stack.enter_async_context(
                            subscribe(url, SUBSCRIPTION, {"app": app_, "proc": proc})
                        )
                        for _ in range(size)
                    ]
                    await asyncio.sleep(_SUBSCRIBED)
                    await _deliver(scheduler, job_id, subscribers)  # warm-up
                    before = counter.statements
                    await _deliver(scheduler, job_id, subscribers)
                    found[size] = counter.statements - before
    return found


def count_per_event(workdir: Path, sizes: tuple[int, ...] = (1, 10, 50)) -> dict[int, int]:
    data = dataset(workdir, 100)  # before the loop: seeding runs alembic, which runs its own
    return asyncio.run(_count(data, list(sizes)))


def table(found: dict[int, int]) -> Table:
    result = Table(
        "2b. SQL statements to deliver one backend event to K procEvents subscribers",
        ["K subscribers", "statements", "per subscriber"],
    )
    for size, statements in found.items():
        result.add(size, statements, statements / size)
    result.note("Constant per event would mean the event is rendered once for all subscribers.")
    return result
