"""Nomad calls per read: `python -m bench.nomadreads [--apps 10] [--reads 50]`.

Deploys `apps` apps of two procs each on the fake Nomad (tests/fakes, served on
127.0.0.1), then reads all their states `reads` times, as a page of apps does, twice: with a
scheduler that asks Nomad (its event stream not started), and with one whose event stream
is in step. Prints the Nomad requests each read made, counted by the fake server.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from contextlib import AbstractAsyncContextManager

from backends.nomad import NomadScheduler, NomadSettings
from backends.types import ProcJob
from tests.backends.nomad.helpers import in_step, make_job, open_scheduler, reading_nomad
from tests.fakes.nomad_server import FakeNomadServer

__all__ = ["main"]


def _jobs(apps: int) -> list[ProcJob]:
    jobs = []
    for number in range(apps):
        app = f"bench{number}"
        jobs.append(make_job(app=app, num_instances=1))
        jobs.append(make_job(app=app, proc="worker", proc_type="worker", num_instances=1))
    return jobs


async def _measure(
    name: str,
    server: FakeNomadServer,
    opened: AbstractAsyncContextManager[NomadScheduler],
    job_ids: list[str],
    reads: int,
) -> tuple[str, float, float]:
    async with opened as scheduler:
        if scheduler.event_stream is not None:
            await in_step(scheduler, server.fake, within=30)
        before = len(server.seen)
        started = time.perf_counter()
        for _ in range(reads):
            states = await scheduler.states(job_ids)
            assert all(state.exists for state in states.values())
        elapsed = time.perf_counter() - started
        calls = [seen.path for seen in server.seen[before:] if not seen.path.endswith("/checks")]
    return name, len(calls) / reads, elapsed / reads * 1000


async def _run(apps: int, reads: int) -> None:
    server = FakeNomadServer().start()
    try:
        settings = NomadSettings(address=server.url)
        jobs = _jobs(apps)
        async with reading_nomad(settings, timeout=10.0) as writer:
            for job in jobs:
                await writer.apply(job)
        server.fake.settle()
        job_ids = [job.job_id for job in jobs]
        rows = [
            await _measure(
                "asks Nomad", server, reading_nomad(settings, timeout=10.0), job_ids, reads
            ),
            await _measure(
                "event stream in step",
                server,
                open_scheduler(settings, timeout=10.0),
                job_ids,
                reads,
            ),
        ]
    finally:
        server.stop()
    print(f"{apps} apps x 2 procs, {reads} reads of all their states")
    print(f"{'scheduler':<24}{'Nomad calls/read':>18}{'ms/read':>10}")
    for name, calls, ms in rows:
        print(f"{name:<24}{calls:>18.1f}{ms:>10.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.nomadreads")
    parser.add_argument("--apps", type=int, default=10)
    parser.add_argument("--reads", type=int, default=50)
    options = parser.parse_args(argv)
    asyncio.run(_run(options.apps, options.reads))


if __name__ == "__main__":
    main()
