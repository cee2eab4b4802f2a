"""A restarted console adopts the processes it started earlier and restores the rest."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from backends.types import InstanceAction, InstanceStatus
from tests.backends.local.helpers import (
    all_up,
    is_alive,
    make_job,
    marked_pids,
    pid_of,
    reap,
    scheduler,
    script,
    wait_for_instances,
    wait_until,
    web_job,
)


async def test_new_scheduler_adopts_live_processes_and_restarts_dead_ones(
    data_dir: Path, marker: str
) -> None:
    web = web_job(marker)
    worker = make_job(marker, num_instances=2)
    async with scheduler(data_dir, stop_on_exit=False) as first:
        await first.apply(web)
        await first.apply(worker)
        (web_before,) = await wait_for_instances(first, web.job_id, all_up)
        workers_before = await wait_for_instances(first, worker.job_id, all_up)
    # Left running for the next console; one of them dies meanwhile.
    assert all(is_alive(pid_of(i)) for i in (web_before, *workers_before))
    os.kill(pid_of(workers_before[1]), signal.SIGKILL)
    reap(pid_of(workers_before[1]))

    async with scheduler(data_dir) as second:
        (web_after,) = await wait_for_instances(second, web.job_id, all_up)
        workers_after = await wait_for_instances(second, worker.job_id, all_up)

        assert web_after.instance_id == web_before.instance_id
        assert web_after.port == web_before.port
        assert web_after.healthy is True
        assert web_after.env == web_before.env
        assert web_after.started_at == web_before.started_at
        assert workers_after[0].instance_id == workers_before[0].instance_id
        assert workers_after[0].restarts == 0
        assert workers_after[1].instance_id != workers_before[1].instance_id
        assert workers_after[1].restarts == 1
        assert workers_after[1].last_error == "exited while the console was not running"

        # An adopted process is still watched: killing it brings a replacement.
        os.kill(pid_of(workers_after[0]), signal.SIGKILL)
        restarted = await wait_for_instances(
            second, worker.job_id, lambda i: i[0].restarts == 1 and all_up(i), what="restart"
        )
        assert restarted[0].instance_id != workers_after[0].instance_id
        assert restarted[0].last_error.startswith("killed by signal 9")
        running = [pid_of(i) for i in (web_after, *restarted)]
    # stop_on_exit: nothing survives the second scheduler.
    assert not any(is_alive(pid) for pid in running)
    assert marked_pids(marker) == []


async def test_stopped_instances_and_finished_oneshots_stay_so_across_restarts(
    data_dir: Path, marker: str
) -> None:
    worker = make_job(marker, num_instances=2)
    append = "open('runs.txt', 'a').write('ran\\n')"
    oneshot = make_job(marker, proc="init", proc_type="oneshot", cmd=script(append))
    async with scheduler(data_dir, stop_on_exit=False) as first:
        await first.apply(worker)
        await first.apply(oneshot)
        await wait_for_instances(first, worker.job_id, all_up)
        await first.control(worker.job_id, InstanceAction.STOP, 2)
        await wait_for_instances(
            first, oneshot.job_id, lambda i: i[0].status is InstanceStatus.COMPLETE
        )
        (running, _) = (await first.state(worker.job_id)).instances

    async with scheduler(data_dir) as second:
        state = await second.state(worker.job_id)
        assert state.instances[0].instance_id == running.instance_id
        assert state.instances[1].status is InstanceStatus.EXITED
        (done,) = (await second.state(oneshot.job_id)).instances
        assert done.status is InstanceStatus.COMPLETE
        assert done.exit_code == 0
        assert marked_pids(marker) == [pid_of(running)]
        assert (data_dir / "apps" / "hello" / "runs.txt").read_text() == "ran\n"


async def test_processes_of_a_half_removed_job_are_terminated(data_dir: Path, marker: str) -> None:
    worker = make_job(marker, num_instances=2)
    async with scheduler(data_dir, stop_on_exit=False) as first:
        await first.apply(worker)
        before = await wait_for_instances(first, worker.job_id, all_up)
    # As if the console died right after deleting the job file in remove().
    (data_dir / "local" / "jobs" / f"{worker.job_id}.json").unlink()

    async with scheduler(data_dir) as second:
        assert not (await second.state(worker.job_id)).exists
        for instance in before:
            reap(pid_of(instance))
        await wait_until(lambda: marked_pids(marker) == [], what="strays to go")
        assert not (data_dir / "local" / "run" / worker.job_id).exists()


_REPO = Path(__file__).resolve().parents[3]

# Runs a console in another process: it deploys a worker, prints the pids, then waits.
_CONSOLE = """
import asyncio, sys
from pathlib import Path
from tests.backends.local.helpers import all_up, make_job, scheduler, wait_for_instances

async def main() -> None:
    job = make_job(sys.argv[2], num_instances=2)
    async with scheduler(Path(sys.argv[1]), stop_on_exit=False) as sched:
        await sched.apply(job)
        instances = await wait_for_instances(sched, job.job_id, all_up)
        print(" ".join(i.instance_id for i in instances), flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_processes_outlive_a_killed_console_and_are_adopted(
    data_dir: Path, marker: str
) -> None:
    console = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CONSOLE,
        str(data_dir),
        marker,
        cwd=_REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    assert console.stdout is not None
    try:
        line = await asyncio.wait_for(console.stdout.readline(), 20)
    finally:
        console.kill()
        await console.wait()
    pids = [int(pid) for pid in line.split()]
    assert len(pids) == 2
    assert all(is_alive(pid) for pid in pids)  # the console's death did not take them along

    worker = make_job(marker, num_instances=2)
    async with scheduler(data_dir) as sched:
        adopted = await wait_for_instances(sched, worker.job_id, all_up)
        assert [pid_of(i) for i in adopted] == pids
        # Not our children: the exit is noticed, its status is not ours to read.
        os.kill(pids[0], signal.SIGKILL)
        restarted = await wait_for_instances(
            sched, worker.job_id, lambda i: i[0].restarts == 1 and all_up(i), what="restart"
        )
        assert restarted[0].last_error.startswith("exited (exit code unknown")
        assert restarted[1].instance_id == adopted[1].instance_id
    assert marked_pids(marker) == []
