"""Supervision: restarts with backoff, oneshots, memory limits and captured output."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

import pytest

from backends.local import LocalScheduler
from backends.types import InstanceStatus
from tests.backends.local.helpers import (
    EventLog,
    all_up,
    is_alive,
    make_job,
    pid_of,
    reap,
    rolled_out,
    scheduler,
    script,
    wait_for_instances,
    wait_until,
)


def _address_space_limit(pid: int) -> str:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max address space"):
            return line.split()[3]
    raise AssertionError("no address space line in /proc/<pid>/limits")


async def test_instance_killed_from_outside_is_restarted(
    sched: LocalScheduler, marker: str
) -> None:
    job = make_job(marker, num_instances=2)
    await sched.apply(job)
    before = await wait_for_instances(sched, job.job_id, all_up)

    os.kill(pid_of(before[0]), signal.SIGKILL)
    after = await wait_for_instances(
        sched, job.job_id, lambda i: i[0].restarts == 1 and all_up(i), what="a restart"
    )

    assert after[0].instance_id != before[0].instance_id
    assert after[0].last_error == "killed by signal 9 (SIGKILL)"
    assert not is_alive(pid_of(before[0]))
    assert after[1].instance_id == before[1].instance_id
    assert after[1].restarts == 0
    assert (await sched.state(job.job_id)).last_error == "killed by signal 9 (SIGKILL)"


async def test_crash_loop_backoff_doubles_up_to_the_maximum(data_dir: Path, marker: str) -> None:
    crash = make_job(marker, cmd=script("import sys; sys.exit(3)"))
    async with scheduler(data_dir, backoff_initial=0.15, backoff_max=0.6) as sched:
        log = EventLog(sched)
        await sched.apply(crash)
        await wait_until(lambda: 5 in log.start_times(crash.job_id), within=15, what="5 restarts")
        await log.close()
        (instance,) = (await sched.state(crash.job_id)).instances

    assert instance.last_error == "exited with code 3"
    failures = [s for s in log.instances(crash.job_id) if s.status is InstanceStatus.FAILED]
    assert len(failures) >= 5
    assert all(s.exit_code == 3 for s in failures)
    starts = log.start_times(crash.job_id)
    gaps = [starts[n + 1] - starts[n] for n in range(5)]
    # Backoffs of 0.15, 0.3, 0.6, 0.6, 0.6 s, plus each run's few tens of milliseconds.
    assert gaps[0] < gaps[1] < gaps[2], gaps
    assert 0.15 <= gaps[0] < 0.45, gaps
    assert all(0.6 <= gap < 1.1 for gap in gaps[2:]), gaps


async def test_oneshot_runs_once_to_completion(
    sched: LocalScheduler, marker: str, data_dir: Path
) -> None:
    append = "open('runs.txt', 'a').write('ran\\n')"
    ok = make_job(marker, proc="migrate", proc_type="oneshot", cmd=script(append))
    failing = make_job(
        marker, proc="broken", proc_type="oneshot", cmd=script("import sys; sys.exit(5)")
    )
    await sched.apply(ok)
    await sched.apply(failing)

    (done,) = await wait_for_instances(
        sched, ok.job_id, lambda i: i[0].status is InstanceStatus.COMPLETE, what="completion"
    )
    (broken,) = await wait_for_instances(
        sched, failing.job_id, lambda i: i[0].status is InstanceStatus.FAILED, what="failure"
    )
    assert done.exit_code == 0
    assert broken.exit_code == 5
    assert broken.last_error == "exited with code 5"
    # A service would be restarted after backoff_initial (0.05 s); a oneshot must not be.
    await asyncio.sleep(0.5)
    assert (await sched.state(ok.job_id)).instances == (done,)
    assert (await sched.state(failing.job_id)).instances == (broken,)
    assert (data_dir / "apps" / "hello" / "runs.txt").read_text() == "ran\n"


async def test_memory_limit_is_applied_as_rlimit(sched: LocalScheduler, marker: str) -> None:
    limited = make_job(marker, proc="limited", memory_bytes=512 * 1024 * 1024)
    unlimited = make_job(marker, proc="unlimited", memory_bytes=0)
    await sched.apply(limited)
    await sched.apply(unlimited)
    (small,) = await wait_for_instances(sched, limited.job_id, all_up)
    (free,) = await wait_for_instances(sched, unlimited.job_id, all_up)

    assert _address_space_limit(pid_of(small)) == str(512 * 1024 * 1024)
    assert _address_space_limit(pid_of(free)) == "unlimited"

    # Resizing replaces the instance with one under the new limit.
    await sched.resize(limited.job_id, cpu=0, memory_bytes=768 * 1024 * 1024)
    (bigger,) = (await rolled_out(sched, limited.job_id)).instances
    assert bigger.instance_id != small.instance_id
    assert _address_space_limit(pid_of(bigger)) == str(768 * 1024 * 1024)
    assert not is_alive(pid_of(small))


async def test_output_is_kept_in_ring_and_files(
    sched: LocalScheduler, marker: str, data_dir: Path
) -> None:
    job = make_job(marker, num_instances=2)
    await sched.apply(job)
    await wait_for_instances(sched, job.job_id, all_up)

    def logged(number: int) -> set[tuple[str, str]]:
        return {(line.stream, line.text) for line in sched.logs(job.job_id, number)}

    await wait_until(
        lambda: {("stdout", "worker 2 started"), ("stderr", "worker stderr line")} <= logged(2),
        what="output of instance 2",
    )
    assert sched.logs(job.job_id, 2, limit=1) == sched.logs(job.job_id, 2)[-1:]
    logs = data_dir / "local" / "logs" / job.job_id
    assert (logs / "2.stdout.log").read_text() == "worker 2 started\n"
    assert (logs / "2.stderr.log").read_text() == "worker stderr line\n"


async def test_log_journals_are_rotated_at_their_cap(data_dir: Path, marker: str) -> None:
    chatty = "import time\nfor n in range(1000):\n    print(f'line {n:04d}', 'x' * 80)\n"
    chatty += "print('last line', flush=True)\ntime.sleep(60)\n"
    job = make_job(marker, cmd=script(chatty))
    async with scheduler(data_dir, log_max_bytes=8192, log_files=3, log_lines=50) as sched:
        await sched.apply(job)
        await wait_until(
            lambda: any(line.text == "last line" for line in sched.logs(job.job_id, 1)),
            what="the last line",
        )
        lines = sched.logs(job.job_id, 1)
        journal = data_dir / "local" / "logs" / job.job_id / "1.stdout.journal"
        assert len(lines) == 50  # the ring keeps only the newest
        # Three generations in all, the current one included; the oldest lines are gone.
        generations = sorted(p.name for p in journal.parent.glob("1.stdout.journal*"))
        assert generations == ["1.stdout.journal", "1.stdout.journal.1", "1.stdout.journal.2"]
        assert journal.stat().st_size <= 8192 + 100 * 1000
        tail = await sched.log_tail(job.job_id, instance=1, lines=10_000)
        assert tail[-1].text == "last line"
        assert tail[0].text != "line 0000 " + "x" * 80
        assert [line.seq for line in tail] == list(range(tail[0].seq, tail[-1].seq + 1))


async def test_adopted_child_exits_are_reaped(sched: LocalScheduler, marker: str) -> None:
    job = make_job(marker)
    await sched.apply(job)
    (instance,) = await wait_for_instances(sched, job.job_id, all_up)
    os.kill(pid_of(instance), signal.SIGKILL)
    await wait_for_instances(sched, job.job_id, lambda i: i[0].restarts == 1)
    reap(pid_of(instance))  # already reaped by the scheduler: must not hang or raise
    assert not is_alive(pid_of(instance))


# Healthy until a file named "sick" appears in its working directory; counts its probes.
_MOODY_WEB = """
import http.server, os
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open("probes", "a") as probes:
            probes.write(".")
        self.send_response(500 if os.path.exists("sick") else 200)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


async def test_health_check_failures_mark_instance_unhealthy_until_it_recovers(
    sched: LocalScheduler, marker: str, data_dir: Path
) -> None:
    job = make_job(
        marker, proc="web", proc_type="web", cmd=script(_MOODY_WEB), port=80, healthcheck="/"
    )
    await sched.apply(job)
    (healthy,) = await wait_for_instances(sched, job.job_id, all_up)
    sick = data_dir / "apps" / "hello" / "sick"

    sick.touch()
    (unhealthy,) = await wait_for_instances(
        sched, job.job_id, lambda i: i[0].healthy is False, what="unhealthy"
    )
    assert unhealthy.status is InstanceStatus.RUNNING  # not restarted, as in LAIN
    assert unhealthy.instance_id == healthy.instance_id
    assert unhealthy.last_error == "health check failed: GET /: HTTP 500"

    sick.unlink()
    (recovered,) = await wait_for_instances(sched, job.job_id, all_up, what="recovery")
    assert recovered.instance_id == healthy.instance_id


async def test_health_probes_log_only_when_the_health_changes(
    sched: LocalScheduler, marker: str, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    job = make_job(
        marker, proc="web", proc_type="web", cmd=script(_MOODY_WEB), port=80, healthcheck="/"
    )
    app_dir = data_dir / "apps" / "hello"

    def probes() -> int:
        path = app_dir / "probes"
        return len(path.read_text()) if path.exists() else 0

    with caplog.at_level(logging.INFO):
        await sched.apply(job)
        await wait_for_instances(sched, job.job_id, all_up)
        await wait_until(lambda: probes() >= 10, what="10 probes while healthy")
        (app_dir / "sick").touch()
        await wait_for_instances(sched, job.job_id, lambda i: i[0].healthy is False)
        sick_from = probes()
        await wait_until(lambda: probes() >= sick_from + 10, what="10 probes while unhealthy")
        (app_dir / "sick").unlink()
        await wait_for_instances(sched, job.job_id, all_up, what="recovery")

    assert [r for r in caplog.records if r.name.startswith("httpx")] == []
    about_health = [
        (r.levelname, r.getMessage()) for r in caplog.records if "health check" in r.getMessage()
    ]
    who = "app hello proc web instance 1"
    assert about_health == [
        ("INFO", f"{who}: health check passes"),
        ("WARNING", f"{who}: health check failed: GET /: HTTP 500"),
        ("INFO", f"{who}: health check passes"),
    ]


async def test_procs_with_a_port_but_no_http_check_get_a_tcp_check(
    sched: LocalScheduler, marker: str
) -> None:
    listening = make_job(marker, proc="listening", cmd=script(_MOODY_WEB), port=5000)
    deaf = make_job(marker, proc="deaf", port=5000)  # the worker never listens

    await sched.apply(listening)
    await sched.apply(deaf)

    (up,) = await wait_for_instances(sched, listening.job_id, all_up)
    assert up.healthy is True
    (waiting,) = (await sched.state(deaf.job_id)).instances
    assert waiting.status is InstanceStatus.PENDING
    assert waiting.healthy is False


async def test_backoff_starts_over_after_a_long_enough_run(data_dir: Path, marker: str) -> None:
    # Each run lasts 0.3 s, longer than backoff_reset: every crash counts as the first.
    crash_later = make_job(marker, cmd=script("import sys, time; time.sleep(0.3); sys.exit(1)"))
    async with scheduler(data_dir, backoff_initial=0.1, backoff_reset=0.2) as sched:
        log = EventLog(sched)
        await sched.apply(crash_later)
        await wait_until(lambda: 4 in log.start_times(crash_later.job_id), what="4 restarts")
        await log.close()

    starts = log.start_times(crash_later.job_id)
    gaps = [starts[n + 1] - starts[n] for n in range(4)]
    # Doubling would give 0.1, 0.2, 0.4, 0.8 s of backoff; a reset keeps every one at 0.1 s.
    assert all(0.4 <= gap < 0.8 for gap in gaps), gaps
