"""Small apps, job builders and waiting helpers for the local-backend tests."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from backends.local import LocalScheduler
from backends.types import (
    EventKind,
    InstanceState,
    InstanceStatus,
    ProcJob,
    ProcState,
    RolloutStatus,
    SchedulerEvent,
)
from tests.app_python import APP_PYTHON

MARKER_KEY = "LAIN_LOCAL_TEST_MARKER"

# Answers 200 on /health and 404 elsewhere, on $PORT.
WEB = """
import http.server, os
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
print("listening on", os.environ["PORT"], flush=True)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""

WORKER = """
import os, sys, time
print("worker", os.environ["DEPLOYD_POD_INSTANCE_NO"], "started", flush=True)
print("worker stderr line", file=sys.stderr, flush=True)
while True:
    time.sleep(1)
"""

IGNORES_SIGTERM = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ignoring SIGTERM", flush=True)
while True:
    time.sleep(1)
"""


def script(code: str) -> tuple[str, ...]:
    return (APP_PYTHON, "-c", code)


def make_job(
    marker: str,
    *,
    app: str = "hello",
    proc: str = "worker",
    proc_type: str = "worker",
    cmd: tuple[str, ...] | None = None,
    num_instances: int = 1,
    env: tuple[tuple[str, str], ...] = (),
    **changes: Any,
) -> ProcJob:
    """A job whose processes carry the test's marker in their environment."""
    job = ProcJob(
        app=app,
        proc=proc,
        proc_type=proc_type,
        meta_version="1528874349-6f8a0c1e2b3d4f5a6b7c8d9e0f1a2b3c4d5e6f70",
        image="registry.lain.local/hello:release-1",
        num_instances=num_instances,
        cpu=0,
        memory_bytes=1024 * 1024 * 1024,
        cmd=cmd if cmd is not None else script(WORKER),
        env=((MARKER_KEY, marker), *env),
        kill_timeout=2,
    )
    return replace(job, **changes)


def web_job(marker: str, **changes: Any) -> ProcJob:
    return make_job(
        marker,
        proc="web",
        proc_type="web",
        cmd=script(WEB),
        port=80,
        healthcheck="/health",
        **changes,
    )


def scheduler(data_dir: Path, **options: Any) -> LocalScheduler:
    """A scheduler with short intervals, so the tests run fast."""
    settings: dict[str, Any] = {
        "backoff_initial": 0.05,
        "backoff_max": 1.0,
        "health_interval": 0.1,
        "rollout_timeout": 10.0,
        "min_healthy_time": 0.3,
        "stop_on_exit": True,
    }
    settings.update(options)
    return LocalScheduler(data_dir=data_dir, **settings)


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]],
    *,
    within: float = 10.0,
    what: str = "condition",
) -> None:
    """Poll `predicate` until it holds; fail the test after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.02)


async def wait_for_instances(
    sched: LocalScheduler,
    job_id: str,
    check: Callable[[tuple[InstanceState, ...]], bool],
    *,
    within: float = 10.0,
    what: str = "instances",
) -> tuple[InstanceState, ...]:
    async def holds() -> bool:
        return check((await sched.state(job_id)).instances)

    await wait_until(holds, within=within, what=f"{what} of {job_id}")
    return (await sched.state(job_id)).instances


async def rolled_out(sched: LocalScheduler, job_id: str, *, within: float = 20.0) -> ProcState:
    """The job's state once its rollout (running in the background) has ended."""

    async def ended() -> bool:
        return (await sched.state(job_id)).rollout is not RolloutStatus.RUNNING

    await wait_until(ended, within=within, what=f"the rollout of {job_id}")
    return await sched.state(job_id)


def all_up(instances: tuple[InstanceState, ...]) -> bool:
    """Every instance running and, where there is a check, healthy."""
    return bool(instances) and all(
        i.status is InstanceStatus.RUNNING and i.healthy is not False and i.instance_id
        for i in instances
    )


def pid_of(instance: InstanceState) -> int:
    return int(instance.instance_id)


def is_alive(pid: int) -> bool:
    """True while the pid is a live process (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def environ_of(pid: int) -> set[str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return {item.decode() for item in raw.split(b"\0") if item}


def marked_pids(marker: str) -> list[int]:
    """Live processes whose environment carries `marker` (anything a test started)."""
    needle = f"{MARKER_KEY}={marker}".encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in raw.split(b"\0") and is_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def kill_and_reap(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    reap(pid)


def reap(pid: int) -> None:
    """Collect a child of this test process, if it is one, once it has died."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


class EventLog:
    """Everything the scheduler published, from its first event on, in order."""

    def __init__(self, sched: LocalScheduler) -> None:
        self.events: list[SchedulerEvent] = []
        self._task = asyncio.create_task(self._collect(sched))

    async def _collect(self, sched: LocalScheduler) -> None:
        async for event in sched.events(after=0):
            self.events.append(event)

    def instances(self, job_id: str, number: int | None = None) -> list[InstanceState]:
        return [
            event.instance
            for event in self.events
            if event.kind is EventKind.INSTANCE
            and event.job_id == job_id
            and event.instance is not None
            and (number is None or event.instance.number == number)
        ]

    def start_times(self, job_id: str) -> dict[int, float]:
        """When each process of instance 1 started (as a timestamp), keyed by restart count."""
        starts: dict[int, float] = {}
        for state in self.instances(job_id, 1):
            if state.started_at is not None and state.instance_id:
                starts.setdefault(state.restarts, state.started_at.timestamp())
        return starts

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
