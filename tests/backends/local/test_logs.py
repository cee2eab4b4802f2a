"""The local backend's output files: kept after the job goes, pruned by age and size."""

from __future__ import annotations

import os
import time
from pathlib import Path

from backends.local import LocalScheduler
from backends.local.logs import LogRetention, prune
from backends.logs import LogStream
from tests.backends.local.helpers import all_up, make_job, script, wait_for_instances, wait_until


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
