"""The mapping from Nomad's JSON to our types, on hand-written objects shaped like Nomad's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from backends.nomad.allocs import (
    JobView,
    deployment_error,
    deployment_rollout,
    placement,
    proc_state,
)
from backends.nomad.jobs import render_job
from backends.types import InstanceStatus, RolloutStatus
from tests.backends.nomad.helpers import make_job

JOB_ID = "hello.web.web"


def _job(*, count: int = 2, version: int = 3, stop: bool = False, **changes: Any) -> dict[str, Any]:
    job = render_job(make_job(num_instances=count, **changes), namespace="default")
    job.update({"Version": version, "CreateIndex": 50, "ModifyIndex": 90, "Stop": stop})
    return job


def _alloc(
    index: int,
    *,
    client: str = "running",
    desired: str = "run",
    created: int = 100,
    events: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    alloc = {
        "ID": f"alloc-{index}-{created}",
        "Name": f"{JOB_ID}.web[{index}]",
        "JobID": JOB_ID,
        "JobVersion": 3,
        "TaskGroup": "web",
        "ClientStatus": client,
        "DesiredStatus": desired,
        "NodeName": "node-1",
        "CreateIndex": created,
        "ModifyIndex": created + 1,
        "TaskStates": {
            "web": {
                "State": "running",
                "Restarts": 2,
                "StartedAt": "2026-11-27T02:42:51.615086123Z",
                "Events": events or [],
            }
        },
        "AllocatedResources": {
            "Shared": {
                "Ports": [{"Label": "main", "Value": 23456, "To": 8080, "HostIP": "10.0.0.5"}]
            }
        },
    }
    alloc.update(extra)
    return alloc


def instances(view: JobView, allocs: list[dict[str, Any]], **known: Any) -> tuple[Any, ...]:
    return placement(view, allocs, **known).instances


def test_instance_numbers_are_alloc_indexes_plus_one_with_address_and_times() -> None:
    view = JobView.from_job(_job())
    found = instances(view, [_alloc(1), _alloc(0)])
    assert [i.number for i in found] == [1, 2]
    first = found[0]
    assert first.job_id == JOB_ID
    assert first.status is InstanceStatus.RUNNING
    assert first.instance_id == "alloc-0-100"
    assert (first.ip, first.port, first.node) == ("10.0.0.5", 23456, "node-1")
    assert first.started_at == datetime(2026, 11, 27, 2, 42, 51, 615086, tzinfo=UTC)
    assert first.restarts == 2
    assert first.env == ("LAIN_APPNAME=hello", "TZ=Asia/Shanghai")


def test_several_allocs_on_one_index_keep_the_newest_live_one() -> None:
    view = JobView.from_job(_job(count=1))
    old_running = _alloc(0, created=100, desired="stop")
    failed = _alloc(0, client="failed", created=120)
    replacement = _alloc(0, client="pending", created=110)
    [instance] = instances(view, [old_running, failed, replacement])
    assert instance.instance_id == "alloc-0-110"
    assert instance.status is InstanceStatus.PENDING


def test_without_a_live_alloc_the_newest_terminal_one_is_the_instance() -> None:
    view = JobView.from_job(_job(count=1))
    [instance] = instances(
        view, [_alloc(0, client="failed", created=100), _alloc(0, client="failed", created=130)]
    )
    assert instance.instance_id == "alloc-0-130"
    assert instance.status is InstanceStatus.FAILED


def test_allocs_of_an_earlier_job_with_the_same_id_are_ignored() -> None:
    view = JobView.from_job(_job(count=1))  # CreateIndex 50
    assert instances(view, [_alloc(0, created=40)]) == ()


def test_an_index_beyond_the_count_shows_only_while_it_is_still_stopping() -> None:
    view = JobView.from_job(_job(count=1))
    stopping = _alloc(1, desired="stop")
    assert [i.number for i in instances(view, [_alloc(0), _alloc(1)])] == [1, 2]
    assert [i.number for i in instances(view, [_alloc(0), stopping])] == [1]


@pytest.mark.parametrize(
    ("client", "desired", "batch", "status"),
    [
        ("pending", "run", False, InstanceStatus.PENDING),
        ("pending", "stop", False, InstanceStatus.EXITED),
        ("running", "run", False, InstanceStatus.RUNNING),
        ("running", "stop", False, InstanceStatus.RUNNING),
        ("complete", "stop", False, InstanceStatus.EXITED),
        ("complete", "run", True, InstanceStatus.COMPLETE),
        ("complete", "stop", True, InstanceStatus.EXITED),
        ("failed", "run", False, InstanceStatus.FAILED),
        ("lost", "stop", False, InstanceStatus.FAILED),
        ("unknown", "run", False, InstanceStatus.FAILED),
    ],
)
def test_client_status_maps_to_instance_status(
    client: str, desired: str, batch: bool, status: InstanceStatus
) -> None:
    changes = {"proc": "migrate", "proc_type": "oneshot"} if batch else {}
    job = _job(count=1, **changes)
    alloc = _alloc(
        0, client=client, desired=desired, Name=f"{job['ID']}.{job['TaskGroups'][0]['Name']}[0]"
    )
    alloc["TaskGroup"] = job["TaskGroups"][0]["Name"]
    [instance] = instances(JobView.from_job(job), [alloc])
    assert instance.status is status


def test_oneshot_with_a_nonzero_exit_is_not_complete() -> None:
    job = _job(count=1, proc="migrate", proc_type="oneshot")
    events = [{"Type": "Terminated", "ExitCode": 3, "DisplayMessage": "Exit Code: 3"}]
    alloc = _alloc(0, client="complete", events=events, Name=f"{job['ID']}.migrate[0]")
    alloc["TaskGroup"] = "migrate"
    alloc["TaskStates"] = {"migrate": alloc["TaskStates"]["web"]}
    [instance] = instances(JobView.from_job(job), [alloc])
    assert instance.status is InstanceStatus.EXITED
    assert instance.exit_code == 3
    assert instance.last_error == "Exit Code: 3"


def test_last_error_and_exit_code_come_from_the_task_events() -> None:
    events = [
        {"Type": "Started", "DisplayMessage": "Task started by client"},
        {
            "Type": "Terminated",
            "ExitCode": 137,
            "DisplayMessage": "Exit Code: 137, Exit Message: OOM",
        },
        {"Type": "Restarting", "DisplayMessage": "Task restarting in 15s"},
        {"Type": "Started", "DisplayMessage": "Task started by client"},
        {"Type": "Terminated", "ExitCode": 0, "DisplayMessage": "Exit Code: 0"},
    ]
    [instance] = instances(JobView.from_job(_job(count=1)), [_alloc(0, events=events)])
    assert instance.last_error == "Exit Code: 137, Exit Message: OOM"
    assert instance.exit_code == 0


def test_driver_failure_is_the_last_error() -> None:
    events = [{"Type": "Driver Failure", "DriverError": "image not found", "DisplayMessage": ""}]
    [instance] = instances(
        JobView.from_job(_job(count=1)), [_alloc(0, client="failed", events=events)]
    )
    assert instance.last_error == "image not found"


def test_lost_alloc_reports_the_client_description() -> None:
    [instance] = instances(
        JobView.from_job(_job(count=1)),
        [_alloc(0, client="lost", ClientDescription="alloc is lost since its node is down")],
    )
    assert instance.last_error == "alloc is lost since its node is down"


def test_healthy_comes_from_the_deployment_then_the_checks() -> None:
    view = JobView.from_job(_job())
    judged = _alloc(0, DeploymentStatus={"Healthy": False})
    unjudged = _alloc(1, DeploymentStatus={"Healthy": None})
    found = instances(view, [judged, unjudged], checks={unjudged["ID"]: True})
    assert [i.healthy for i in found] == [False, True]
    assert instances(view, [unjudged])[0].healthy is None


def test_healthy_is_none_for_a_proc_without_a_check() -> None:
    view = JobView.from_job(_job(healthcheck=""))
    [instance] = instances(view, [_alloc(0, DeploymentStatus={"Healthy": True})])
    assert instance.healthy is None


def test_pending_alloc_without_task_states_or_resources() -> None:
    alloc = _alloc(0, client="pending", TaskStates=None, AllocatedResources=None)
    [instance] = instances(JobView.from_job(_job(count=1)), [alloc])
    assert instance.started_at is None
    assert (instance.ip, instance.port, instance.restarts) == (None, None, 0)


def test_zero_start_time_means_not_started() -> None:
    alloc = _alloc(0, client="pending")
    alloc["TaskStates"]["web"]["StartedAt"] = "0001-01-01T00:00:00Z"
    [instance] = instances(JobView.from_job(_job(count=1)), [alloc])
    assert instance.started_at is None


def test_env_is_reported_only_for_allocs_running_the_current_version() -> None:
    [instance] = instances(JobView.from_job(_job(count=1)), [_alloc(0, JobVersion=2)])
    assert instance.env == ()


def test_proc_state_takes_resources_and_versions_from_the_stored_spec() -> None:
    job = make_job(cpu=4, num_instances=2)
    rendered = render_job(job, namespace="default")
    rendered.update({"Version": 0, "CreateIndex": 1, "ModifyIndex": 1})
    state = proc_state(JobView.from_job(rendered), (), last_error="boom")
    assert state.exists
    assert (state.num_instances, state.cpu, state.memory_bytes) == (2, 4, job.memory_bytes)
    assert (state.image, state.meta_version) == (job.image, job.meta_version)
    assert state.spec_hash == job.spec_hash()
    assert state.last_error == "boom"


def test_proc_state_of_a_job_not_rendered_by_us_reads_the_task() -> None:
    foreign = {
        "ID": "other",
        "Type": "service",
        "TaskGroups": [
            {
                "Name": "g",
                "Count": 1,
                "Tasks": [
                    {"Name": "t", "Config": {"image": "nginx"}, "Resources": {"MemoryMB": 128}}
                ],
            }
        ],
    }
    state = proc_state(JobView.from_job(foreign), ())
    assert (state.image, state.memory_bytes, state.cpu, state.spec_hash) == (
        "nginx",
        128 * 1024 * 1024,
        0,
        "",
    )


def test_deployment_error_only_for_failed_deployments() -> None:
    failed = {
        "ID": "0b4c5d6e-aaaa",
        "Status": "failed",
        "StatusDescription": "Failed due to unhealthy allocations",
        "JobVersion": 1,
        "CreateIndex": 10,
    }
    assert deployment_error([failed]) == (
        "Nomad deployment 0b4c5d6e failed: Failed due to unhealthy allocations"
    )
    assert deployment_error([{"ID": "x", "Status": "successful", "CreateIndex": 9}]) == ""
    assert deployment_error([]) == ""


def test_deployment_error_stays_while_the_auto_revert_rolls_out() -> None:
    failed = {
        "ID": "0b4c5d6e-aaaa",
        "Status": "failed",
        "StatusDescription": "Failed due to unhealthy allocations - rolling back to job version 0",
        "JobVersion": 1,
        "CreateIndex": 10,
    }
    revert = {"ID": "r", "Status": "successful", "JobVersion": 2, "CreateIndex": 12}
    assert "rolling back to job version 0" in deployment_error([revert, failed])
    fixed = {"ID": "n", "Status": "successful", "JobVersion": 3, "CreateIndex": 14}
    assert deployment_error([fixed, revert, failed]) == ""


def test_release_is_the_meta_version_of_the_job_version_the_alloc_runs() -> None:
    view = JobView.from_job(_job(count=2))
    current, older = _alloc(0), _alloc(1, JobVersion=2)
    found = instances(view, [current, older], releases={2: "1500000000-old"})
    assert [i.release for i in found] == [view.meta_version, "1500000000-old"]
    # A version whose meta version was never seen is unknown, not the current one.
    assert [i.release for i in instances(view, [older])] == [""]


def test_a_live_allocation_behind_a_newer_one_in_its_slot_is_shadowed_not_gone() -> None:
    # A canary takes the alloc index of the old instance it will replace (scheduler/
    # reconciler: the canary's name is the old allocation's); both run until a promotion.
    view = JobView.from_job(_job(count=2))
    old = {1: "1500000000-old", 2: "1500000000-older"}
    canary = _alloc(0, created=120)
    beside = _alloc(0, created=90, JobVersion=2)
    stopped = _alloc(1, created=80, JobVersion=1, client="complete", desired="stop")
    found = placement(view, [beside, canary, stopped, _alloc(1, created=110)], releases=old)
    assert [(i.number, i.instance_id) for i in found.instances] == [
        (1, canary["ID"]),
        (2, "alloc-1-110"),
    ]
    # The stopped allocation serves nothing: only the live one behind the canary counts.
    assert found.shadowed_releases == ("1500000000-older",)


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], RolloutStatus.NONE),
        (["successful"], RolloutStatus.NONE),
        (["successful", "running"], RolloutStatus.RUNNING),
        (["successful", "paused"], RolloutStatus.RUNNING),
        (["successful", "failed"], RolloutStatus.STOPPED),
        (["failed", "successful"], RolloutStatus.NONE),
        (["successful", "cancelled"], RolloutStatus.NONE),
    ],
)
def test_rollout_is_the_latest_deployments_state(
    statuses: list[str], expected: RolloutStatus
) -> None:
    deployments = [
        {"ID": f"d{n}", "Status": status, "CreateIndex": 10 + n}
        for n, status in enumerate(statuses)
    ]
    assert deployment_rollout(reversed(deployments)) is expected
