"""ProcJob -> Nomad job JSON, and back from the job's Meta. Pure: no I/O.

One Nomad job per proc, its ID the LAIN pod-group name. The job has one task group and one
task, both named after the proc, so a scale targets `{"Group": <proc>}`.

The whole ProcJob (minus its count) is kept in `Meta["lain-spec"]`. Resizing and restarting
a stopped job re-render from it, so what Nomad runs is always something `render_job` made
and the spec hash stays that of the ProcJob; the count lives only in the task group, where
the scale endpoint changes it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from backends.errors import SchedulerRejected
from backends.nomad.options import JobOptions
from backends.types import ProcJob

__all__ = [
    "DEFAULT_CPU_MHZ_PER_UNIT",
    "DRIVERS",
    "KILL_SIGNAL",
    "MANAGED_BY",
    "META_APP",
    "META_MANAGED_BY",
    "META_META_VERSION",
    "META_PROC",
    "META_PROC_TYPE",
    "META_SPEC",
    "META_SPEC_HASH",
    "PORT_LABEL",
    "WEB_SHUTDOWN_DELAY",
    "cpu_mhz",
    "decode_spec",
    "is_managed",
    "memory_mb",
    "render_job",
    "service_name",
]

NS_PER_SECOND = 1_000_000_000

META_MANAGED_BY = "managed-by"
MANAGED_BY = "lain-console"
META_APP = "lain-app"
META_PROC = "lain-proc"
META_PROC_TYPE = "lain-proc-type"
META_META_VERSION = "lain-meta-version"
META_SPEC_HASH = "lain-spec-hash"
META_SPEC = "lain-spec"

PORT_LABEL = "main"
KILL_SIGNAL = "SIGTERM"
WEB_SHUTDOWN_DELAY = 5  # seconds between service deregistration and the kill signal
DRIVERS = ("docker", "raw_exec")

# A LAIN cpu "level" is a share of a node (deployd: 0 means 2, at most 8). Nomad reserves
# MHz, so each level becomes this many MHz: the default proc (level 2) reserves 500 MHz.
DEFAULT_CPU_MHZ_PER_UNIT = 250
_MIN_LEVEL, _DEFAULT_LEVEL, _MAX_LEVEL = 1, 2, 8
# Nomad refuses a task with less than 10 MB of memory.
_MIN_MEMORY_MB = 10

_HEALTHCHECK_INTERVAL = 10 * NS_PER_SECOND  # LAIN raised check options to >= 10 s / 3 s
_HEALTHCHECK_TIMEOUT = 3 * NS_PER_SECOND
_CHECK_RESTART_LIMIT = 3  # failed checks in a row before Nomad restarts the task
_SERVICE_NAME_BAD = re.compile(r"[^a-z0-9-]+")
LOG_DIR = "/lain/logs"  # every LAIN proc's log directory
# lain.yaml filters (lainyaml/procfields.py): (constraint|affinity):<key>(==|!=)<value>.
_FILTER = re.compile(r"(constraint|affinity):([A-Za-z0-9_.-]+)(==|!=)(.+)")
_AFFINITY_WEIGHT = 50  # a preference, as swarm's soft affinities were
_ENV_NAMES = "env_names"  # in the Meta spec: the env's names, in order, without values
DEFAULT_OPTIONS = JobOptions()


def cpu_mhz(cpu: int, mhz_per_unit: int) -> int:
    """The MHz Nomad reserves for a LAIN cpu level, with deployd's clamping of the level."""
    level = _DEFAULT_LEVEL if cpu < _MIN_LEVEL else min(cpu, _MAX_LEVEL)
    return level * mhz_per_unit


def memory_mb(memory_bytes: int) -> int:
    """Bytes rounded up to whole MiB, never under Nomad's minimum."""
    return max(math.ceil(memory_bytes / (1024 * 1024)), _MIN_MEMORY_MB)


def service_name(job_id: str) -> str:
    """A Nomad service name (RFC 1123 label) for a pod-group name: dots become dashes."""
    name = _SERVICE_NAME_BAD.sub("-", job_id.lower()).strip("-")
    return name[:63].rstrip("-") or "lain"


def is_managed(meta: Mapping[str, Any] | None) -> bool:
    """Whether a job's Meta says lain-console rendered it."""
    return meta is not None and meta.get(META_MANAGED_BY) == MANAGED_BY


def render_job(
    job: ProcJob,
    *,
    namespace: str,
    cpu_mhz_per_unit: int = DEFAULT_CPU_MHZ_PER_UNIT,
    region: str = "",
    stopped: bool = False,
    default_driver: str = "docker",
    options: JobOptions = DEFAULT_OPTIONS,
) -> dict[str, Any]:
    """The Nomad `Job` object for a proc (what goes under `{"Job": ...}` on register).

    `service` for web/worker/portal, `batch` for oneshot; the group count is
    `job.num_instances`; `default_driver` runs a ProcJob whose `driver` is empty. The
    spec stored in Meta is `job` exactly as given, so its hash is the caller's.
    Durations are nanoseconds, as Nomad's JSON wants them. Raises SchedulerRejected for a
    ProcJob Nomad could not run, naming the lain.yaml field when one cannot be honoured.
    """
    stored = job
    if not job.driver:
        job = dataclasses.replace(job, driver=default_driver)
    _validate(job, options)
    task: dict[str, Any] = {
        "Name": job.proc,
        "Driver": job.driver,
        "Config": _driver_config(job, options),
        "Env": _env(job),
        "Resources": {
            "CPU": cpu_mhz(job.cpu, cpu_mhz_per_unit),
            "MemoryMB": memory_mb(job.memory_bytes),
        },
        "KillTimeout": job.kill_timeout * NS_PER_SECOND,
        # LAIN stopped containers as `docker stop` does: SIGTERM, SIGKILL after
        # kill_timeout. Nomad's own default signal is SIGINT, which many apps ignore.
        "KillSignal": KILL_SIGNAL,
    }
    if job.user:
        task["User"] = job.user
    group: dict[str, Any] = {
        "Name": job.proc,
        "Count": job.num_instances,
        "RestartPolicy": _restart_policy(job),
        "Tasks": [task],
    }
    if job.port is not None:
        port: dict[str, Any] = {"Label": PORT_LABEL}
        if job.driver == "docker":
            # Docker maps the dynamic host port to the port the image listens on; a
            # raw_exec process shares the host network and must bind $NOMAD_PORT_main.
            port["To"] = job.port
        group["Networks"] = [{"Mode": "host", "DynamicPorts": [port]}]
        if job.port_protocol == "tcp":
            group["Services"] = [_service(job, options)]
            if job.proc_type == "web":
                # Deregister the service first and let routers drain it before the kill
                # signal, so a stop or a rolling update drops no requests.
                group["ShutdownDelay"] = WEB_SHUTDOWN_DELAY * NS_PER_SECOND
    if not job.is_service or job.stateful:
        # A oneshot runs once: a failed run is reported, not retried elsewhere. A stateful
        # proc stays on its node, as in LAIN: restarted in place, never moved.
        group["ReschedulePolicy"] = {"Attempts": 0, "Unlimited": False}
    if job.stateful:
        group["EphemeralDisk"] = {"Sticky": True, "Migrate": False}
    constraints, affinities = _placement(job.filters)
    if constraints:
        group["Constraints"] = constraints
    if affinities:
        group["Affinities"] = affinities
    rendered: dict[str, Any] = {
        "ID": job.job_id,
        "Name": job.job_id,
        "Namespace": namespace,
        "Type": "service" if job.is_service else "batch",
        "Priority": options.priority,
        "Datacenters": list(options.datacenters),
        "Meta": _meta(stored),
        "TaskGroups": [group],
        "Stop": stopped,
    }
    if options.node_pool:
        rendered["NodePool"] = options.node_pool
    if options.distinct_hosts:
        rendered["Constraints"] = [{"Operand": "distinct_hosts", "RTarget": "true"}]
    if region:
        rendered["Region"] = region
    if job.is_service:
        rendered["Update"] = _update(job, options)
    return rendered


def decode_spec(
    meta: Mapping[str, Any] | None,
    *,
    num_instances: int,
    env: Mapping[str, Any] | None = None,
) -> ProcJob | None:
    """The ProcJob stored in a job's Meta by `render_job`, or None if it has none.

    `env` is the task's Env: the Meta keeps only the names of the variables, in order
    (Meta is readable inside every task as NOMAD_META_*, so no value goes there)."""
    if not meta or not isinstance(raw := meta.get(META_SPEC), str):
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    names = data.pop(_ENV_NAMES, None)
    if isinstance(names, list):
        values = env or {}
        data["env"] = [[name, str(values.get(name, ""))] for name in names]
    data["num_instances"] = num_instances
    try:
        return ProcJob.from_dict(data)
    except (TypeError, ValueError):
        return None


def _validate(job: ProcJob, options: JobOptions) -> None:
    _validate_basics(job)
    refused = _refused_field(job, options)
    if refused:
        raise SchedulerRejected(f"{job.job_id}: {refused}")


def _refused_field(job: ProcJob, options: JobOptions) -> str:
    """Why a lain.yaml field of the proc cannot run on Nomad as configured, or ""."""
    if job.secret_files:
        return (
            "secret_files is not supported on Nomad (LAIN's per-instance secret store has no "
            "Nomad counterpart here); put the secret in the proc's env instead"
        )
    if job.logs:
        return (
            "logs (extra log files for LAIN's collector) is not supported on Nomad; write the "
            "logs to stdout or stderr, which Nomad keeps"
        )
    if job.container_healthcheck:
        return (
            "container_healthcheck is not supported on Nomad (its native checks are HTTP or "
            "TCP); use healthcheck, an HTTP path, instead"
        )
    bad = [text for text in job.filters if _FILTER.fullmatch(text) is None]
    if bad:
        return f"filters {bad} are not (constraint|affinity):<key>==<value> or !=<value>"
    if job.mountpoints and (job.port is None or job.port_protocol != "tcp"):
        return "mountpoints need a TCP port: they are routed to the proc's service"
    if job.persistent_dirs and job.driver != "docker":
        return f"persistent_dirs {list(job.persistent_dirs)} need the docker driver on Nomad"
    if job.persistent_dirs and not options.volumes_root:
        return (
            f"persistent_dirs {list(job.persistent_dirs)} would be lost on every reschedule: "
            "set LAIN_CONSOLE_NOMAD_VOLUMES_ROOT to keep them on the client's disk"
        )
    return ""


def _validate_basics(job: ProcJob) -> None:
    if job.driver not in DRIVERS:
        raise SchedulerRejected(
            f"{job.job_id}: Nomad driver must be one of {', '.join(DRIVERS)}, got {job.driver!r}"
        )
    if job.num_instances < 0:
        raise SchedulerRejected(f"{job.job_id}: num_instances must be >= 0")
    if job.memory_bytes <= 0:
        raise SchedulerRejected(f"{job.job_id}: memory must be positive")
    if job.driver == "raw_exec" and not (job.entrypoint or job.cmd):
        raise SchedulerRejected(f"{job.job_id}: raw_exec needs a cmd or an entrypoint to run")
    if job.driver == "docker" and not job.image:
        raise SchedulerRejected(f"{job.job_id}: the docker driver needs an image")


def _driver_config(job: ProcJob, options: JobOptions) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if job.driver == "docker":
        config["image"] = job.image
        if options.force_pull:
            config["force_pull"] = True
        if options.registry_username:
            config["auth"] = {
                "username": options.registry_username,
                "password": options.registry_password,
            }
        if options.volumes_root:
            # One directory per app, proc and instance slot (the allocation index, stable
            # across replacements), LAIN's /lain/logs included.
            base = f"{options.volumes_root}/{job.app}/{job.proc}/${{NOMAD_ALLOC_INDEX}}"
            config["volumes"] = [f"{base}{path}:{path}" for path in (LOG_DIR, *job.persistent_dirs)]
        if job.entrypoint:
            config["entrypoint"] = list(job.entrypoint)
        if job.cmd:
            # Args alone replace the image's CMD (Nomad's docker driver sets Cmd to them).
            config["args"] = list(job.cmd)
        if job.port is not None:
            config["ports"] = [PORT_LABEL]
        if job.working_dir:
            config["work_dir"] = job.working_dir
        return config
    argv = [*(job.entrypoint or ()), *(job.cmd or ())]
    if job.working_dir:
        # raw_exec has `work_dir` only from Nomad 1.9; on 1.6-1.8 the client refuses the
        # whole task (drivers/rawexec/driver.go). A shell that changes directory and then
        # execs the command works on every version and keeps the signals going to it.
        argv = ["/bin/sh", "-c", 'cd "$0" && exec "$@"', job.working_dir, *argv]
    config["command"] = argv[0]
    if argv[1:]:
        config["args"] = argv[1:]
    return config


def _env(job: ProcJob) -> dict[str, str]:
    env = dict(job.env)
    if job.port is not None and job.driver == "raw_exec":
        # A raw_exec process shares the host's network: it must listen on the port Nomad
        # picked, not the declared one. PORT says where, as in the local backend (Nomad
        # interpolates it when the task starts). In a container the declared port is
        # right: Docker maps Nomad's port to it.
        env["PORT"] = f"${{NOMAD_PORT_{PORT_LABEL}}}"
    return env


def _service(job: ProcJob, options: JobOptions) -> dict[str, Any]:
    name = service_name(job.job_id)
    service: dict[str, Any] = {
        "Name": name,
        "PortLabel": PORT_LABEL,
        "Provider": "nomad",  # no Consul: Nomad-native discovery and checks
        "Tags": [
            f"lain-app={job.app}",
            f"lain-proc={job.proc}",
            *_route_tags(job.mountpoints, options.route_tags, name),
        ],
    }
    if job.proc_type == "web" and job.healthcheck:
        service["Checks"] = [
            {
                "Name": "healthcheck",
                "Type": "http",
                "Path": job.healthcheck,
                "PortLabel": PORT_LABEL,
                "Interval": _HEALTHCHECK_INTERVAL,
                "Timeout": _HEALTHCHECK_TIMEOUT,
                # Without it a check that fails after the deployment changes nothing:
                # Nomad restarts the task after this many failures in a row, the grace
                # covering its start (LAIN's setup_time).
                "CheckRestart": {
                    "Limit": _CHECK_RESTART_LIMIT,
                    "Grace": max(job.setup_time, 10) * NS_PER_SECOND,
                    "IgnoreWarnings": False,
                },
            }
        ]
    return service


def _placement(filters: tuple[str, ...]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """LAIN's swarm filters as Nomad constraints and affinities: `node` is the node's name,
    any other key (LAIN's `group` included) a node meta value of that name."""
    constraints: list[dict[str, Any]] = []
    affinities: list[dict[str, Any]] = []
    for text in filters:
        found = _FILTER.fullmatch(text)
        if found is None:
            continue  # refused before rendering (see _refused_field)
        kind, key, operator, value = found.groups()
        target = "${node.unique.name}" if key == "node" else f"${{meta.{key}}}"
        rule = {"LTarget": target, "RTarget": value, "Operand": "=" if operator == "==" else "!="}
        if kind == "constraint":
            constraints.append(rule)
        else:
            affinities.append({**rule, "Weight": _AFFINITY_WEIGHT})
    return constraints, affinities


def _route_tags(
    mountpoints: tuple[str, ...], templates: tuple[str, ...], service: str
) -> list[str]:
    """The router tags for each mountpoint (`host/path`), from the operator's templates."""
    tags = []
    for mountpoint in mountpoints:
        host, _, path = mountpoint.partition("/")
        for template in templates:
            tags.append(
                template.format(mountpoint=mountpoint, host=host, path=f"/{path}", service=service)
            )
    return tags


def _has_check(job: ProcJob) -> bool:
    return job.proc_type == "web" and bool(job.healthcheck) and job.port is not None


def _update(job: ProcJob, options: JobOptions) -> dict[str, Any]:
    # LAIN's setup_time is the pause between instances of a rolling update; Nomad's
    # equivalent is how long a new instance must stay healthy. 0 takes Nomad's 10 s.
    min_healthy = (job.setup_time or 10) * NS_PER_SECOND
    canary = job.canary
    auto_promote = canary is not None and canary.auto_promote_after is not None
    if canary is not None and canary.auto_promote_after is not None:
        # Nomad promotes once every canary is healthy (nomad/deploymentwatcher,
        # autoPromoteDeployment), and an allocation is healthy only after MinHealthyTime:
        # that is the time canaries must prove themselves for.
        min_healthy = canary.auto_promote_after * NS_PER_SECOND
    healthy_deadline = min_healthy + 300 * NS_PER_SECOND
    return {
        "MaxParallel": options.max_parallel,
        "HealthCheck": "checks" if _has_check(job) else "task_states",
        "MinHealthyTime": min_healthy,
        "HealthyDeadline": healthy_deadline,
        "ProgressDeadline": healthy_deadline + 300 * NS_PER_SECOND,
        "AutoRevert": True,
        # Nomad refuses AutoPromote without canaries (structs.UpdateStrategy.Validate).
        "AutoPromote": auto_promote,
        "Canary": canary.instances if canary is not None else 0,
    }


def _restart_policy(job: ProcJob) -> dict[str, Any]:
    if job.is_service:
        return {
            "Attempts": 3,
            "Interval": 300 * NS_PER_SECOND,
            "Delay": 15 * NS_PER_SECOND,
            "Mode": "fail",
        }
    return {"Attempts": 0, "Interval": 300 * NS_PER_SECOND, "Delay": 0, "Mode": "fail"}


def _meta(job: ProcJob) -> dict[str, str]:
    spec = dataclasses.asdict(job)
    del spec["num_instances"]
    # How one register rolls out is not the proc's spec: a resize or start re-rendered
    # from this must not wait for a promotion again.
    del spec["canary"]
    # Meta is visible inside every task as NOMAD_META_* and to anyone who may read the
    # job: env values (secrets, often) stay in the task's Env only.
    del spec["env"]
    spec[_ENV_NAMES] = [name for name, _ in job.env]
    meta = dict(job.extra_meta)
    # Ours last, so an extra_meta entry can never pass for lain-console's bookkeeping.
    meta.update(
        {
            META_MANAGED_BY: MANAGED_BY,
            META_APP: job.app,
            META_PROC: job.proc,
            META_PROC_TYPE: job.proc_type,
            META_META_VERSION: job.meta_version,
            META_SPEC_HASH: job.spec_hash(),
            META_SPEC: json.dumps(spec, sort_keys=True, separators=(",", ":")),
        }
    )
    return meta
