"""Deploying procs: instances come up with their env, in their directory, healthy."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import pytest

from backends.base import Scheduler
from backends.errors import JobNotFound, SchedulerRejected
from backends.local import LocalScheduler
from backends.types import Canary, InstanceAction, InstanceStatus
from tests.backends.local.helpers import (
    all_up,
    environ_of,
    make_job,
    pid_of,
    scheduler,
    script,
    wait_for_instances,
    wait_until,
    web_job,
)


def test_local_scheduler_satisfies_the_scheduler_protocol(data_dir: Path) -> None:
    sched: Scheduler = scheduler(data_dir)  # checked by the type checker
    assert callable(sched.apply)


async def test_apply_two_proc_app_runs_web_healthy_and_worker(
    sched: LocalScheduler, marker: str
) -> None:
    web = web_job(marker, num_instances=2)
    worker = make_job(marker)
    await sched.apply(web)
    await sched.apply(worker)

    web_instances = await wait_for_instances(sched, web.job_id, all_up, what="healthy web")
    worker_instances = await wait_for_instances(sched, worker.job_id, all_up)

    assert [i.number for i in web_instances] == [1, 2]
    assert all(i.healthy is True for i in web_instances)
    ports = {i.port for i in web_instances}
    assert None not in ports
    assert len(ports) == 2
    assert all(i.ip == "127.0.0.1" and i.node == "local" for i in web_instances)
    assert all(i.started_at is not None and i.started_at.tzinfo for i in web_instances)
    (worker_instance,) = worker_instances
    assert worker_instance.healthy is None  # no port, no check
    assert worker_instance.port is None
    state = await sched.state(web.job_id)
    assert state.exists
    assert state.num_instances == 2
    assert state.spec_hash == web.spec_hash()
    assert state.meta_version == web.meta_version
    assert state.image == web.image
    assert state.memory_bytes == web.memory_bytes


async def test_apply_gives_instance_its_env_and_app_directory(
    sched: LocalScheduler, marker: str, data_dir: Path
) -> None:
    job = web_job(marker, env=(("GREETING", "hello world"),), num_instances=2)
    await sched.apply(job)
    instances = await wait_for_instances(sched, job.job_id, all_up)

    for instance in instances:
        env = dict(item.split("=", 1) for item in instance.env)
        assert env["GREETING"] == "hello world"
        assert env["LAIN_APPNAME"] == "hello"
        assert env["LAIN_PROCNAME"] == "web"
        assert env["LAIN_APP_RELEASE_VERSION"] == job.meta_version
        assert env["DEPLOYD_POD_INSTANCE_NO"] == str(instance.number)
        assert env["DEPLOYD_POD_NAME"] == "hello.web.web"
        assert env["DEPLOYD_POD_NAMESPACE"] == "hello"
        assert env["PORT"] == str(instance.port)
        assert env["PATH"] == os.environ["PATH"]
        # What the process really got, and nothing else.
        assert environ_of(pid_of(instance)) == set(instance.env)
        assert os.readlink(f"/proc/{pid_of(instance)}/cwd") == str(data_dir / "apps" / "hello")


async def test_apply_execs_cmd_as_argv_and_a_shell_only_when_asked(
    sched: LocalScheduler, marker: str
) -> None:
    show_argv = "import sys, time; print(sys.argv[1:], flush=True); time.sleep(60)"
    direct = make_job(marker, proc="direct", cmd=(*script(show_argv), "$HOME", "a b", "*"))
    shell_cmd = ("sh", "-c", "echo shell for $LAIN_APPNAME; sleep 60")
    shell = make_job(marker, proc="shell", cmd=shell_cmd)
    await sched.apply(direct)
    await sched.apply(shell)

    def logged(job_id: str, text: str) -> bool:
        return any(line.text == text for line in sched.logs(job_id, 1))

    await wait_until(lambda: logged(direct.job_id, "['$HOME', 'a b', '*']"), what="argv")
    await wait_until(lambda: logged(shell.job_id, "shell for hello"), what="shell output")


async def test_apply_job_without_cmd_is_rejected(sched: LocalScheduler, marker: str) -> None:
    with pytest.raises(SchedulerRejected, match="no cmd"):
        await sched.apply(make_job(marker, cmd=()))
    assert not (await sched.state("hello.worker.worker")).exists


async def test_canaries_are_refused_and_there_is_nothing_to_promote(
    sched: LocalScheduler, marker: str
) -> None:
    # Rollouts here replace one instance at a time; dropping canaries would be silent.
    assert sched.canary_deploys is False
    job = make_job(marker)
    with pytest.raises(SchedulerRejected, match="canary deploys need the Nomad backend"):
        await sched.apply(dataclasses.replace(job, canary=Canary(instances=1)))
    assert not (await sched.state(job.job_id)).exists
    with pytest.raises(JobNotFound):
        await sched.promote(job.job_id)
    await sched.apply(job)
    with pytest.raises(SchedulerRejected, match="has nothing to promote: canary deploys"):
        await sched.promote(job.job_id)


async def test_missing_executable_fails_instance_and_keeps_retrying(
    sched: LocalScheduler, marker: str, caplog: pytest.LogCaptureFixture
) -> None:
    job = make_job(marker, cmd=("no-such-program-for-lain-tests",))
    with caplog.at_level(logging.WARNING, logger="backends.local"):
        await sched.apply(job)
        (instance,) = await wait_for_instances(
            sched, job.job_id, lambda i: i[0].restarts >= 2, what="retries"
        )
    assert instance.status is InstanceStatus.FAILED
    assert instance.last_error == "executable not found: no-such-program-for-lain-tests"
    assert (await sched.state(job.job_id)).last_error == instance.last_error
    assert (await sched.health()).ok
    # The server log says it too: one WARNING line per failed start, naming app, proc, instance.
    starts = [r for r in caplog.records if "cannot start" in r.getMessage()]
    assert len(starts) >= 2
    assert {(r.levelno, r.getMessage(), r.exc_info) for r in starts} == {
        (
            logging.WARNING,
            "app hello proc worker instance 1: cannot start: "
            "executable not found: no-such-program-for-lain-tests",
            None,
        )
    }


async def test_unknown_job_and_bad_instance_numbers_are_errors(
    sched: LocalScheduler, marker: str
) -> None:
    with pytest.raises(JobNotFound):
        await sched.scale("nope.web.web", 2)
    with pytest.raises(JobNotFound):
        await sched.resize("nope.web.web", cpu=1, memory_bytes=1)
    with pytest.raises(JobNotFound):
        await sched.control("nope.web.web", InstanceAction.RESTART)
    await sched.remove("nope.web.web")  # no error
    assert not (await sched.state("nope.web.web")).exists
    assert not (await sched.states(["nope.web.web"]))["nope.web.web"].exists

    job = make_job(marker, num_instances=2)
    await sched.apply(job)
    for number in (0, 3):
        with pytest.raises(SchedulerRejected, match=f"no instance {number}"):
            await sched.control(job.job_id, InstanceAction.STOP, number)
    with pytest.raises(SchedulerRejected):
        await sched.scale(job.job_id, -1)


async def test_health_reports_the_data_dir(data_dir: Path, marker: str) -> None:
    sched = scheduler(data_dir)
    assert not (await sched.health()).ok  # not running yet
    async with sched:
        assert (await sched.health()).ok
        # Tests run as root, which ignores permissions: put a file where the directory was.
        os.rename(data_dir / "local", data_dir / "moved-local")
        (data_dir / "local").write_text("not a directory")
        health = await sched.health()
        assert not health.ok
        assert str(data_dir) in health.detail
