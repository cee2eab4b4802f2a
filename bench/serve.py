"""A server under test, in a process of its own: `python -m bench.serve TARGET ...`.

Targets:
  app       the product (`server.app.create_app`) over a seeded dataset, its scheduler a
            `LoadedScheduler` holding the dataset's jobs
  baseline  the bare Starlette app of `bench.baseline` over the same dataset
  nomad     the product with the settings' Nomad backend (NOMAD_ADDR names the fake Nomad)
  local     the product with its local backend (real processes) over the data dir's own
            SQLite database, migrated first, as `lain-console serve` does it

Each runs under uvicorn with one worker and uvicorn's defaults (uvloop, httptools), as
`lain-console serve` does, on 127.0.0.1. Logging is at WARNING for every target, so the
product's one access line per request is filtered out, not written.

`--no-metrics` serves the product with LAIN_CONSOLE_METRICS=false (see `bench.metrics`).
`--read-cache` serves it with the read cache on (off otherwise; see `bench.cached`).
`--control` adds `POST /_bench/restart?job=&instance=`, which restarts an instance through
the scheduler (one backend event) and answers with the moment the event was published.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from backends.types import InstanceAction
from bench.baseline import create_baseline
from bench.config import bench_settings
from bench.scheduler import LoadedScheduler
from bench.seed import Dataset
from server.app import create_app
from server.collector import tune_collector
from server.logging import configure_logging
from store.migrate import upgrade

__all__ = ["main"]


def _control(app: ASGIApp, scheduler: LoadedScheduler) -> ASGIApp:
    """`app` with the bench's own route in front; every other path goes to `app`."""

    async def restart(request: Request) -> Response:
        job_id = request.query_params["job"]
        number = int(request.query_params.get("instance", "1"))
        before = scheduler.feed.cursor
        await scheduler.control(job_id, InstanceAction.RESTART, number)
        cursor = scheduler.feed.cursor
        body: dict[str, Any] = {
            "cursor": cursor,
            "published_ns": scheduler.timed_feed.published_ns[cursor] if cursor > before else 0,
            "restarts": scheduler.restarts.get((job_id, number), 0),
        }
        return Response(json.dumps(body), media_type="application/json")

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/_bench/restart":
            response = await restart(Request(scope, receive))
            await response(scope, receive, send)
            return
        await app(scope, receive, send)

    return wrapped


def _build(args: argparse.Namespace) -> ASGIApp:
    if args.target in ("nomad", "local"):
        data_dir = Path(args.data_dir)
        url = f"sqlite+aiosqlite:///{data_dir / 'lain-console.db'}"
        if args.target == "local":
            data_dir.mkdir(parents=True, exist_ok=True)
            upgrade(url)  # alembic runs its own event loop: before uvicorn's
        return create_app(bench_settings(data_dir, url, backend=args.target))
    data = Dataset(n=args.n, directory=Path(args.data_dir))
    scheduler = LoadedScheduler(data.jobs())
    app: Starlette
    if args.target == "baseline":
        app = create_baseline(data.url, scheduler)
    else:
        settings = bench_settings(
            data.directory, data.url, metrics=args.metrics, read_cache=args.read_cache
        )
        app = create_app(settings, scheduler=scheduler)
    return _control(app, scheduler) if args.control else app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serve")
    parser.add_argument("target", choices=("app", "baseline", "nomad", "local"))
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--n", type=int, default=0)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control", action="store_true")
    parser.add_argument("--no-metrics", dest="metrics", action="store_false")
    parser.add_argument("--read-cache", action="store_true")
    args = parser.parse_args()
    configure_logging("WARNING")
    app = _build(args)
    tune_collector()  # as `lain-console serve` does
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )


if __name__ == "__main__":
    main()
