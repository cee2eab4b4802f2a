"""The local backend's output files: kept after the job goes, pruned by age and size."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from backends.local import LocalScheduler
from backends.local.logs import LogPump, LogRetention, prune
from backends.local.threads import ThreadBridge
from backends.logs import LogStream
from tests.backends.local.helpers import all_up, make_job, script, wait_for_instances, wait_until

T = TypeVar("T")


async def test_output_outlives_the_job(sched: LocalScheduler, marker: str) -> None:
    job = make_job(marker, num_instances=2)
    await sched.apply(job)
    await wait_for_instances(sched, job.job_id, all_up)
    await wait_until(
        lambda: len(sched.logs(job.job_id, 1)) == len(sched.logs(job.job_id, 2)) == 2,
        what="both lines of both instances",
    )
    await sched.remove(job.job_id)

    lines = await sched.log_tail(job.job_id, lines=10)
    assert {(line.instance, line.stream, line.text) for line in lines} == {
        (1, LogStream.STDOUT, "worker 1 started"),
        (1, LogStream.STDERR, "worker stderr line"),
        (2, LogStream.STDOUT, "worker 2 started"),
        (2, LogStream.STDERR, "worker stderr line"),
    }
    assert all(line.time is not None for line in lines)
    assert await sched.log_tail(job.job_id, instance=3, lines=10) == []  # never ran


def _file(path: Path, size: int, age_days: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    when = time.time() - age_days * 86400
    os.utime(path, (when, when))
    return path


def test_prune_deletes_old_files_then_the_oldest_beyond_the_total(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    ancient = _file(root / "a.web.web" / "1.stdout.journal.2", 4096, age_days=30)
    live_old = _file(root / "a.web.web" / "1.stdout.journal", 4096, age_days=30)
    older = _file(root / "b.web.web" / "1.stdout.journal", 64 * 1024, age_days=3)
    newer = _file(root / "b.web.web" / "2.stdout.journal", 64 * 1024, age_days=1)
    gone_job = _file(root / "c.web.web" / "1.stderr.journal", 4096, age_days=10)

    retention = LogRetention(max_age_seconds=7 * 86400, max_total_bytes=100 * 1024)
    prune(root, {live_old}, retention, time.time())

    assert not ancient.exists()  # older than the retention age
    assert not gone_job.exists()
    assert not (root / "c.web.web").exists()  # empty directories go too
    assert live_old.exists()  # a live instance's current files are never pruned
    assert not older.exists()  # over the total: the oldest goes first
    assert newer.exists()


async def test_a_line_left_without_newline_is_shown_once_the_writer_is_quiet(
    sched: LocalScheduler, marker: str
) -> None:
    code = "import sys, time\nsys.stdout.write('Password: ')\nsys.stdout.flush()\ntime.sleep(60)\n"
    job = make_job(marker, cmd=script(code))
    await sched.apply(job)

    async def shown() -> bool:
        lines = await sched.log_tail(job.job_id, lines=10)
        return [line.text for line in lines] == ["Password: "]

    await wait_until(shown, what="the partial line", within=15)


class _CountingBridge(ThreadBridge):
    """Runs the pump's blocking reads and counts them."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def __call__(self, fn: Callable[[], T]) -> T:
        self.calls += 1
        return await super().__call__(fn)


async def test_quiet_instances_are_read_only_with_everything_else(tmp_path: Path) -> None:
    bridge = _CountingBridge()
    pump = LogPump(blocking=bridge, root=tmp_path, interval=0.05, quiet_interval=1.0)
    worker, web = "hello.worker.worker", "hello.web.web"
    for job_id in (worker, web):
        (tmp_path / job_id).mkdir()
    talkative = pump.attach(worker, 1, tmp_path / worker)
    quiet = pump.attach(worker, 2, tmp_path / worker)
    followed = pump.attach(web, 1, tmp_path / web)
    # New slots count as heard from: their processes' first words are read at once.
    assert pump._lively() == [(worker, 1), (worker, 2), (web, 1)]

    long_ago = time.monotonic() - 60
    quiet.heard_at = followed.heard_at = long_ago
    (tmp_path / worker / "1.stdout.log").write_text("hello\n")
    await pump.flush()  # everything, as the pump does every quiet_interval and a tail does
    assert [line.text for line in talkative.lines()] == ["hello"]
    assert talkative.heard_at > long_ago, "heard from: read at every interval"
    assert quiet.heard_at == long_ago
    assert pump._lively() == [(worker, 1)]

    with pump.fanout.subscribe(web, 1):
        assert pump._lively() == [(worker, 1), (web, 1)]  # a follower waits for no one

    calls = bridge.calls
    await pump.flush([])  # nothing lively: no worker thread is woken
    assert bridge.calls == calls
