from __future__ import annotations

import dataclasses
import json
import re
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
from backends.nomad.options import JobOptions
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
    env = rendered["TaskGroups"][0]["Tasks"][0]["Env"]
    assert decode_spec(rendered["Meta"], num_instances=2, env=env) == job


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
    rendered = _render(job)
    env = rendered["TaskGroups"][0]["Tasks"][0]["Env"]
    decoded = decode_spec(rendered["Meta"], num_instances=7, env=env)
    assert decoded == dataclasses.replace(job, num_instances=7)
    assert decoded is not None
    assert decoded.spec_hash() == job.spec_hash()


def test_meta_keeps_the_spec_digest_but_no_env_value() -> None:
    # Meta reaches every task as NOMAD_META_* variables.
    job = make_job(env=(("DB_PASSWORD", "hunter2-secret"), ("TZ", "UTC")))
    rendered = _render(job)
    meta = rendered["Meta"]
    assert meta["lain-spec-hash"] == job.spec_hash()
    assert not any("hunter2-secret" in value for value in meta.values())
    assert rendered["TaskGroups"][0]["Tasks"][0]["Env"]["DB_PASSWORD"] == "hunter2-secret"


def test_decode_spec_of_a_job_registered_with_env_in_meta_still_works() -> None:
    # Jobs registered before env values left the Meta keep working until redeployed.
    job = make_job()
    spec = json.loads(_render(job)["Meta"][META_SPEC])
    del spec["env_names"]
    spec["env"] = [list(pair) for pair in job.env]
    meta = {META_SPEC: json.dumps(spec)}
    assert decode_spec(meta, num_instances=2) == job


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


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"secret_files": ("/lain/app/secret.json",)}, "secret_files"),
        ({"logs": ("app.log",)}, "logs"),
        ({"container_healthcheck": "curl -f localhost:8080"}, "container_healthcheck"),
        ({"proc": "foo", "proc_type": "worker", "mountpoints": ("a.lain.local/x",)}, "mountpoints"),
        ({"persistent_dirs": ("/var/data",)}, "persistent_dirs"),
    ],
)
def test_render_refuses_a_lain_yaml_field_it_cannot_honour_naming_it(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(SchedulerRejected, match=rf"^hello\.\w+\.\w+: {field} ") as caught:
        _render(make_job(**changes))
    assert len(str(caught.value)) > 60  # says what to do instead


def test_render_persistent_dirs_bind_one_directory_per_app_proc_and_instance() -> None:
    options = JobOptions(volumes_root="/srv/lain")
    job = make_job(persistent_dirs=("/var/data",))
    [task] = _render(job, options=options)["TaskGroups"][0]["Tasks"]
    assert task["Config"]["volumes"] == [
        "/srv/lain/hello/web/${NOMAD_ALLOC_INDEX}/lain/logs:/lain/logs",
        "/srv/lain/hello/web/${NOMAD_ALLOC_INDEX}/var/data:/var/data",
    ]
    with pytest.raises(SchedulerRejected, match=r"persistent_dirs .* need the docker driver"):
        _render(dataclasses.replace(job, driver="raw_exec", entrypoint=("/a",)), options=options)


def test_render_mountpoints_become_router_tags() -> None:
    job = make_job(mountpoints=("hello.lain.local/api", "api.example.com/"))
    [service] = _render(job)["TaskGroups"][0]["Services"]
    assert service["Tags"][2:] == [
        "lain-mountpoint=hello.lain.local/api",
        "lain-mountpoint=api.example.com/",
    ]
    traefik = "traefik.http.routers.{service}.rule=Host(`{host}`) && PathPrefix(`{path}`)"
    options = JobOptions(route_tags=(traefik, "urlprefix-{mountpoint}"))
    [service] = _render(job, options=options)["TaskGroups"][0]["Services"]
    assert service["Tags"][2:] == [
        "traefik.http.routers.hello-web-web.rule=Host(`hello.lain.local`) && PathPrefix(`/api`)",
        "urlprefix-hello.lain.local/api",
        "traefik.http.routers.hello-web-web.rule=Host(`api.example.com`) && PathPrefix(`/`)",
        "urlprefix-api.example.com/",
    ]


def test_render_stateful_stays_on_its_node() -> None:
    [group] = _render(make_job(stateful=True))["TaskGroups"]
    assert group["ReschedulePolicy"] == {"Attempts": 0, "Unlimited": False}
    assert group["EphemeralDisk"] == {"Sticky": True, "Migrate": False}


def test_render_applies_the_operators_rollout_placement_and_pull_options() -> None:
    options = JobOptions(
        max_parallel=3,
        datacenters=("dc1", "dc2"),
        node_pool="apps",
        priority=70,
        distinct_hosts=True,
        force_pull=True,
        registry_username="lain",
        registry_password="s3cret",
    )
    rendered = _render(make_job(), options=options)
    validate_job(rendered)
    assert rendered["Update"]["MaxParallel"] == 3
    assert (rendered["Datacenters"], rendered["NodePool"], rendered["Priority"]) == (
        ["dc1", "dc2"],
        "apps",
        70,
    )
    assert rendered["Constraints"] == [{"Operand": "distinct_hosts", "RTarget": "true"}]
    config = rendered["TaskGroups"][0]["Tasks"][0]["Config"]
    assert config["force_pull"] is True
    assert config["auth"] == {"username": "lain", "password": "s3cret"}


def test_render_options_default_to_what_nomad_would_pick() -> None:
    rendered = _render(make_job())
    assert (rendered["Datacenters"], rendered["Priority"]) == (["*"], 50)
    assert "NodePool" not in rendered
    assert "Constraints" not in rendered
    assert rendered["Update"]["MaxParallel"] == 1


def test_job_options_from_environ() -> None:
    prefix = "LAIN_CONSOLE_NOMAD_"
    options = JobOptions.from_environ(
        {
            f"{prefix}MAX_PARALLEL": "2",
            f"{prefix}DATACENTERS": "dc1, dc2",
            f"{prefix}DISTINCT_HOSTS": "true",
            f"{prefix}VOLUMES_ROOT": "/srv/lain/",
            f"{prefix}ROUTE_TAGS": '["urlprefix-{mountpoint}", "a,b={host}"]',
        }
    )
    assert options.max_parallel == 2
    assert options.datacenters == ("dc1", "dc2")
    assert options.distinct_hosts
    assert options.volumes_root == "/srv/lain"
    assert options.route_tags == ("urlprefix-{mountpoint}", "a,b={host}")
    assert JobOptions.from_environ({}) == JobOptions()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MAX_PARALLEL", "0", "MAX_PARALLEL must be an integer 1-100"),
        ("PRIORITY", "high", "PRIORITY must be an integer 1-100"),
        ("VOLUMES_ROOT", "srv", "VOLUMES_ROOT must be an absolute path"),
        ("ROUTE_TAGS", "{nope}", "ROUTE_TAGS: '{nope}' may use only"),
        ("ROUTE_TAGS", "[1]", "ROUTE_TAGS must be a template or a JSON list"),
        ("REGISTRY_USERNAME", "lain", "must be set together"),
        ("FORCE_PULL", "maybe", "FORCE_PULL must be true or false"),
    ],
)
def test_job_options_refuse_bad_values_naming_the_variable(
    name: str, value: str, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        JobOptions.from_environ({f"LAIN_CONSOLE_NOMAD_{name}": value})


def test_render_lain_filters_become_constraints_and_affinities() -> None:
    job = make_job(
        filters=("constraint:node==node-3", "constraint:group!=gpu", "affinity:rack==r1")
    )
    [group] = _render(job)["TaskGroups"]
    assert group["Constraints"] == [
        {"LTarget": "${node.unique.name}", "RTarget": "node-3", "Operand": "="},
        {"LTarget": "${meta.group}", "RTarget": "gpu", "Operand": "!="},
    ]
    assert group["Affinities"] == [
        {"LTarget": "${meta.rack}", "RTarget": "r1", "Operand": "=", "Weight": 50}
    ]
    # LAIN's default group filter places anywhere: nothing is rendered for it.
    [group] = _render(make_job())["TaskGroups"]
    assert "Constraints" not in group
    assert "Affinities" not in group
    with pytest.raises(SchedulerRejected, match=r"^hello\.web\.web: filters \['node=x'\]"):
        _render(make_job(filters=("node=x",)))
