"""Real instances on the local backend: the console's idle CPU with ~350 of them, and reads
served while they run beside the same reads over the in-memory scheduler.

The apps (`bench.localapps`): each has web instances (a port and an HTTP health check the
console probes) and sleeping workers. Once every instance is up and has stayed up past
the probe schedule's last stage (a minute), the console's CPU time is read from /proc over a
window in which nothing is asked of it: that is what supervising and health-checking the
instances costs. Then REST `GET /api/v1/apps/` and `GET /api/v1/apps/<a>/` are timed
against it, and again against a console serving a copy of the same database with the
in-memory scheduler (`bench.scheduler.LoadedScheduler`) holding the same jobs, which is
what every other throughput figure of `make bench` uses. Every process started is killed
at the end, also when the run fails.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from backends.types import ProcJob
from bench.load import Budget, LoadResult, run_load
from bench.localapps import LocalApps, app_name, local_console, tiny_yaml
from bench.processes import server
from bench.report import Table, verdict

__all__ = ["IDLE_TARGET", "InstancesResult", "measure", "tables"]

IDLE_TARGET = 0.02  # of a core
_WEB, _WORKERS = 3, 2  # instances per app
_READS = {
    "apps": ("REST GET /api/v1/apps/", "/api/v1/apps/"),
    "app": ("REST GET /api/v1/apps/<a>/", "/api/v1/apps/{app}/"),
}


@dataclass(frozen=True, slots=True)
class InstancesResult:
    apps: int
    instances: int  # app processes alive during the idle window
    settled_seconds: float  # how long after every instance was up the window began
    window_seconds: float
    idle_cpu: float  # CPU seconds per wall second of the console in the window
    reads: dict[str, tuple[LoadResult, LoadResult]]  # name -> (real processes, in-memory)
    problem: str = ""

    @property
    def met(self) -> bool:
        return self.idle_cpu <= IDLE_TARGET and not self.problem


def _path(name: str, app: str) -> str:
    return _READS[name][1].format(app=app)


async def _reads(url: str, app: str, budget: Budget) -> dict[str, LoadResult]:
    timed: dict[str, LoadResult] = {}
    for name in _READS:
        path = _path(name, app)
        body = await _body(url, path)
        timed[name] = await run_load(
            url, lambda client, path=path: client.get(path), budget, expect_bytes=len(body)
        )
    return timed


async def _body(url: str, path: str) -> bytes:
    async with httpx.AsyncClient(base_url=url, timeout=120.0) as client:
        response = await client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code}")
        return bytes(response.content)


def _in_memory_copy(local: LocalApps, directory: Path) -> None:
    """The local console's database (SQLite's backup: consistent while it runs) and its
    jobs, as `bench.serve app` loads a dataset."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    with (
        sqlite3.connect(local.data_dir / "lain-console.db") as source,
        sqlite3.connect(directory / "lain-console.db") as copy,
    ):
        source.backup(copy)
    jobs: dict[str, ProcJob] = {}
    for path in (local.data_dir / "local" / "jobs").glob("*.json"):
        job = ProcJob.from_dict(json.loads(path.read_text())["job"])
        jobs[job.job_id] = job
    (directory / "jobs.pickle").write_bytes(pickle.dumps(jobs))


def measure(
    workdir: Path, budget: Budget, *, apps: int = 70, window: float = 20.0, settle: float = 65.0
) -> InstancesResult:
    names = [app_name(i) for i in range(apps)]
    yamls = {n: tiny_yaml(n, web=_WEB, workers=_WORKERS) for n in names}
    copy = workdir / "instances-in-memory"
    with local_console(workdir, "instances", yamls) as local:
        up = time.monotonic()
        # Past the probe schedule's last stage (an instance healthy for a minute): the
        # steady state of a console that has been up for a while.
        time.sleep(settle)
        instances = local.processes()
        before, started = local.served.cpu_seconds(), time.monotonic()
        time.sleep(window)
        idle = (local.served.cpu_seconds() - before) / (time.monotonic() - started)
        settled = started - up
        real = asyncio.run(_reads(local.served.url, names[0], budget))
        _in_memory_copy(local, copy)
    try:
        with server("app", data_dir=copy, n=apps) as memory:
            in_memory = asyncio.run(_reads(memory.url, names[0], budget))
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    return InstancesResult(
        apps=apps,
        instances=instances,
        settled_seconds=settled,
        window_seconds=window,
        idle_cpu=idle,
        reads={name: (real[name], in_memory[name]) for name in _READS},
        problem="" if instances >= apps * (_WEB + _WORKERS) else "instances missing",
    )


def tables(result: InstancesResult) -> list[Table]:
    idle = Table(
        f"Idle console with {result.instances} real instances ({result.apps} apps x "
        f"{_WEB} web with an HTTP health check + {_WORKERS} workers), local backend",
        ["measured", "CPU of a core", "target", "verdict"],
    )
    idle.add(
        f"{result.window_seconds:.0f} s window, {result.settled_seconds:.0f} s after all were up",
        f"{result.idle_cpu:.2%}",
        f"<= {IDLE_TARGET:.0%}",
        verdict(result.met),
    )
    if result.problem:
        idle.note(result.problem)
    reads = Table(
        "Reads with real instance processes beside the in-memory scheduler (same database)",
        ["endpoint", "real req/s", "real p99 ms", "in-memory req/s", "in-memory p99 ms", "ratio"],
    )
    for name, (real, memory) in result.reads.items():
        reads.add(
            _READS[name][0],
            real.rate,
            real.latencies.p99,
            memory.rate,
            memory.latencies.p99,
            real.rate / memory.rate if memory.rate else float("nan"),
        )
    reads.note(
        "ratio = real / in-memory req/s; the same 16 concurrent clients, one after the other"
    )
    return [idle, reads]


def main() -> None:
    """`python -m bench.instances [--apps N] [--window S]`: this part alone."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m bench.instances")
    parser.add_argument("--apps", type=int, default=70)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--settle", type=float, default=65.0)
    parser.add_argument("--seconds", type=float, default=5.0, help="time bound of each read")
    args = parser.parse_args()
    budget = Budget(max_seconds=args.seconds, max_requests=2000)
    workdir = Path(tempfile.gettempdir()) / "lain-console-bench"
    workdir.mkdir(parents=True, exist_ok=True)
    result = measure(workdir, budget, apps=args.apps, window=args.window, settle=args.settle)
    for found in tables(result):
        print(found.render() + "\n")


if __name__ == "__main__":
    main()
