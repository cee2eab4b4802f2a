from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from backends.errors import SchedulerRejected
from backends.nomad.jobs import (
    META_SPEC,
    cpu_mhz,
    decode_spec,
    memory_mb,
    render_job,
    service_name,
)
from backends.types import ProcJob
from tests.backends.nomad.helpers import MIB, make_job
from tests.fakes.nomad_schema import JobInvalid, validate_job

SECOND = 1_000_000_000


def _render(job: ProcJob, **options: Any) -> dict[str, Any]:
    return render_job(job, namespace="default", cpu_mhz_per_unit=250, **options)


def test_render_web_job_is_a_docker_service_with_a_nomad_check() -> None:
    job = make_job(num_instances=3, entrypoint=("/entry.sh",), working_dir="/lain/app", user="app")
    rendered = _render(job)

    assert rendered["ID"] == "hello.web.web"
    assert rendered["Type"] == "service"
    assert rendered["Namespace"] == "default"
    assert rendered["Stop"] is False
    [group] = rendered["TaskGroups"]
    assert group["Name"] == "web"
    assert group["Count"] == 3
    assert group["Networks"] == [{"Mode": "host", "DynamicPorts": [{"Label": "main", "To": 8080}]}]
    [task] = group["Tasks"]
    assert task["Driver"] == "docker"
    assert task["Config"] == {
        "image": "registry.lain.local/hello:release-1",
        "entrypoint": ["/entry.sh"],
        "args": ["./run", "--port", "8080"],
        "ports": ["main"],
        "work_dir": "/lain/app",
    }
    assert task["Env"] == {"LAIN_APPNAME": "hello", "TZ": "Asia/Shanghai"}
    assert task["User"] == "app"
    assert task["Resources"] == {"CPU": 250, "MemoryMB": 64}
    assert task["KillTimeout"] == 10 * SECOND
    [service] = group["Services"]
    assert service["Provider"] == "nomad"
    assert service["Name"] == "hello-web-web"
    assert service["Checks"] == [
        {
            "Name": "healthcheck",
            "Type": "http",
            "Path": "/health",
            "PortLabel": "main",
            "Interval": 10 * SECOND,
            "Timeout": 3 * SECOND,
            # A check failing later restarts the task (3 in a row, after a start grace).
            "CheckRestart": {"Limit": 3, "Grace": 10 * SECOND, "IgnoreWarnings": False},
        }
    ]
    update = rendered["Update"]
    assert update["HealthCheck"] == "checks"
    assert update["AutoRevert"] is True
    assert update["MaxParallel"] == 1
    assert update["MinHealthyTime"] == 10 * SECOND
    assert update["HealthyDeadline"] > update["MinHealthyTime"]
    assert update["ProgressDeadline"] >= update["HealthyDeadline"]


def test_render_stops_like_lain_sigterm_then_kill_after_its_timeout() -> None:
    # LAIN stopped containers as `docker stop` does; Nomad's default signal is SIGINT.
    for job in (make_job(kill_timeout=30), make_job(proc="foo", proc_type="worker")):
        [task] = _render(job)["TaskGroups"][0]["Tasks"]
        assert (task["KillSignal"], task["KillTimeout"]) == ("SIGTERM", job.kill_timeout * SECOND)


def test_render_web_deregisters_its_service_before_the_kill() -> None:
    [web] = _render(make_job())["TaskGroups"]
    assert web["ShutdownDelay"] == 5 * SECOND
    [worker] = _render(make_job(proc="foo", proc_type="worker"))["TaskGroups"]
    assert "ShutdownDelay" not in worker


def test_render_meta_names_app_proc_version_and_spec_hash() -> None:
    job = make_job(extra_meta=(("team", "infra"), ("managed-by", "someone-else")))
    meta = _render(job)["Meta"]
    assert meta["managed-by"] == "lain-console"
    assert meta["lain-app"] == "hello"
    assert meta["lain-proc"] == "web"
    assert meta["lain-proc-type"] == "web"
    assert meta["lain-meta-version"] == job.meta_version
    assert meta["lain-spec-hash"] == job.spec_hash()
    assert meta["team"] == "infra"


def test_render_worker_without_port_has_no_network_nor_service() -> None:
    rendered = _render(make_job(proc="foo", proc_type="worker"))
    [group] = rendered["TaskGroups"]
    assert "Networks" not in group
    assert "Services" not in group
    assert "ports" not in group["Tasks"][0]["Config"]
    assert rendered["Update"]["HealthCheck"] == "task_states"


def test_render_web_without_healthcheck_registers_a_service_without_checks() -> None:
    [group] = _render(make_job(healthcheck=""))["TaskGroups"]
    assert "Checks" not in group["Services"][0]


def test_render_udp_port_is_mapped_but_not_a_service() -> None:
    [group] = _render(make_job(proc_type="worker", port=5353, port_protocol="udp"))["TaskGroups"]
    assert group["Networks"][0]["DynamicPorts"] == [{"Label": "main", "To": 5353}]
    assert "Services" not in group


def test_render_oneshot_is_a_batch_job_that_is_not_retried() -> None:
    rendered = _render(make_job(proc="migrate", proc_type="oneshot", num_instances=1))
    assert rendered["Type"] == "batch"
    assert "Update" not in rendered
    [group] = rendered["TaskGroups"]
    assert group["RestartPolicy"]["Attempts"] == 0
    assert group["ReschedulePolicy"] == {"Attempts": 0, "Unlimited": False}


def test_render_raw_exec_runs_entrypoint_and_cmd_binding_the_nomad_port() -> None:
    job = make_job(driver="raw_exec", entrypoint=("/usr/bin/python3",), cmd=("-m", "app"))
    [group] = _render(job)["TaskGroups"]
    task = group["Tasks"][0]
    assert task["Driver"] == "raw_exec"
    assert task["Config"] == {"command": "/usr/bin/python3", "args": ["-m", "app"]}
    # No `To`: the process shares the host network and binds $NOMAD_PORT_main itself.
    assert group["Networks"][0]["DynamicPorts"] == [{"Label": "main"}]


def test_render_raw_exec_tells_the_process_the_port_nomad_picked() -> None:
    [group] = _render(make_job(driver="raw_exec", entrypoint=("/app",)))["TaskGroups"]
    assert group["Tasks"][0]["Env"]["PORT"] == "${NOMAD_PORT_main}"
    # In a container the declared port is right: Docker maps Nomad's port to it.
    [group] = _render(make_job())["TaskGroups"]
    assert "PORT" not in group["Tasks"][0]["Env"]


def test_render_raw_exec_working_dir_without_work_dir_which_needs_nomad_1_9() -> None:
    job = make_job(driver="raw_exec", entrypoint=("/app",), cmd=("serve",), working_dir="/srv/x")
    [task] = _render(job)["TaskGroups"][0]["Tasks"]
    assert task["Config"] == {
        "command": "/bin/sh",
        "args": ["-c", 'cd "$0" && exec "$@"', "/srv/x", "/app", "serve"],
    }


def test_render_empty_driver_takes_the_default_but_keeps_the_spec_as_given() -> None:
    job = make_job(driver="")
    rendered = _render(job, default_driver="raw_exec")
    assert rendered["TaskGroups"][0]["Tasks"][0]["Driver"] == "raw_exec"
    assert rendered["Meta"]["lain-spec-hash"] == job.spec_hash()
    assert decode_spec(rendered["Meta"], num_instances=2) == job


def test_render_setup_time_is_the_min_healthy_time() -> None:
    update = _render(make_job(setup_time=30))["Update"]
    assert update["MinHealthyTime"] == 30 * SECOND


def test_render_stopped_and_region() -> None:
    rendered = _render(make_job(), stopped=True, region="cn-north")
    assert rendered["Stop"] is True
    assert rendered["Region"] == "cn-north"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"driver": "podman"}, "driver"),
        ({"num_instances": -1}, "num_instances"),
        ({"memory_bytes": 0}, "memory"),
        ({"driver": "raw_exec", "cmd": None}, "raw_exec"),
        ({"image": ""}, "image"),
    ],
)
def test_render_refuses_a_job_nomad_could_not_run(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(SchedulerRejected, match=message):
        _render(make_job(**changes))


@pytest.mark.parametrize(
    ("level", "mhz"), [(0, 500), (-1, 500), (1, 250), (2, 500), (4, 1000), (8, 2000), (20, 2000)]
)
def test_cpu_mhz_clamps_the_lain_level_like_deployd(level: int, mhz: int) -> None:
    assert cpu_mhz(level, 250) == mhz


@pytest.mark.parametrize(
    ("memory_bytes", "mb"), [(32 * MIB, 32), (32 * MIB + 1, 33), (1, 10), (1536 * MIB, 1536)]
)
def test_memory_mb_rounds_up_to_nomads_minimum(memory_bytes: int, mb: int) -> None:
    assert memory_mb(memory_bytes) == mb


def test_service_name_is_an_rfc1123_label() -> None:
    assert (
        service_name("resource.redis.client.worker.redis") == "resource-redis-client-worker-redis"
    )
    assert len(service_name("a" * 80 + ".web.web")) == 63


def test_decode_spec_round_trips_every_field() -> None:
    job = make_job(
        entrypoint=("/bin/sh", "-c"),
        extra_meta=(("k", "v"),),
        working_dir="/w",
        setup_time=5,
        kill_timeout=30,
    )
    meta = _render(job)["Meta"]
    decoded = decode_spec(meta, num_instances=7)
    assert decoded == dataclasses.replace(job, num_instances=7)
    assert decoded is not None
    assert decoded.spec_hash() == job.spec_hash()


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", '{"app": "x"}'])
def test_decode_spec_of_foreign_meta_is_none(raw: str) -> None:
    assert decode_spec({META_SPEC: raw}, num_instances=1) is None
    assert decode_spec(None, num_instances=1) is None


@pytest.mark.parametrize(
    "job",
    [
        make_job(),
        make_job(proc="foo", proc_type="worker"),
        make_job(proc="migrate", proc_type="oneshot"),
        make_job(driver="raw_exec"),
        make_job(proc="portal-echo", proc_type="portal", port=9000),
    ],
    ids=["web", "worker", "oneshot", "raw_exec", "portal"],
)
def test_rendered_jobs_pass_the_fakes_field_whitelist(job: ProcJob) -> None:
    validate_job(_render(job))


def test_fake_rejects_a_misspelled_field_naming_it() -> None:
    rendered = _render(make_job())
    resources = rendered["TaskGroups"][0]["Tasks"][0]["Resources"]
    resources["MemoryMb"] = resources.pop("MemoryMB")
    with pytest.raises(JobInvalid, match=r"Job.TaskGroups\[0\].Tasks\[0\].Resources.MemoryMb"):
        validate_job(rendered)


def test_fake_rejects_a_duration_in_seconds() -> None:
    rendered = _render(make_job())
    rendered["TaskGroups"][0]["Services"][0]["Checks"][0]["Interval"] = 10
    with pytest.raises(JobInvalid, match="Interval"):
        validate_job(rendered)
