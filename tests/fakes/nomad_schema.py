"""The job JSON the fake Nomad accepts: field whitelists, a subset of Nomad's validation,
and the server-side canonicalization (defaults) our code may rely on.

Stricter than Nomad on purpose: Go's JSON decoder silently drops a misspelled field
(`MemoryMb`, `Healthcheck`), so against a real Nomad a typo is a setting that quietly does
nothing. The fake answers 400 naming the field instead. The names come from Nomad's API
structs (api/jobs.go, api/tasks.go, api/services.go, NOTES 1.10).
"""

from __future__ import annotations

import copy
import re
from typing import Any

__all__ = ["JobInvalid", "JobMalformed", "canonicalize", "validate_job"]

SECOND = 1_000_000_000

# A schema maps a field to: None (a value we do not look into), a schema (an object), or
# a one-element list holding a schema (a list of such objects).
Schema = dict[str, Any]

_CONSTRAINT: Schema = {"LTarget": None, "RTarget": None, "Operand": None}
_PORT: Schema = {"Label": None, "Value": None, "To": None, "HostNetwork": None}
_NETWORK: Schema = {
    "Mode": None,
    "Device": None,
    "CIDR": None,
    "IP": None,
    "DNS": None,
    "ReservedPorts": [_PORT],
    "DynamicPorts": [_PORT],
    "Hostname": None,
    "MBits": None,
}
_CHECK_RESTART: Schema = {"Limit": None, "Grace": None, "IgnoreWarnings": None}
_CHECK: Schema = {
    "Name": None,
    "Type": None,
    "Command": None,
    "Args": None,
    "Path": None,
    "Protocol": None,
    "PortLabel": None,
    "Expose": None,
    "AddressMode": None,
    "Interval": None,
    "Timeout": None,
    "InitialStatus": None,
    "TLSSkipVerify": None,
    "Header": None,
    "Method": None,
    "Body": None,
    "CheckRestart": _CHECK_RESTART,
    "GRPCService": None,
    "GRPCUseTLS": None,
    "TaskName": None,
    "SuccessBeforePassing": None,
    "FailuresBeforeCritical": None,
    "FailuresBeforeWarning": None,
    "OnUpdate": None,
}
_SERVICE: Schema = {
    "Name": None,
    "Tags": None,
    "CanaryTags": None,
    "EnableTagOverride": None,
    "PortLabel": None,
    "AddressMode": None,
    "Address": None,
    "Checks": [_CHECK],
    "CheckRestart": _CHECK_RESTART,
    "Meta": None,
    "CanaryMeta": None,
    "TaskName": None,
    "OnUpdate": None,
    "Provider": None,
    "Cluster": None,
}
_RESOURCES: Schema = {
    "CPU": None,
    "Cores": None,
    "MemoryMB": None,
    "MemoryMaxMB": None,
    "DiskMB": None,
    "Networks": [_NETWORK],
    "Devices": None,
}
_RESTART: Schema = {"Attempts": None, "Interval": None, "Delay": None, "Mode": None}
_RESCHEDULE: Schema = {
    "Attempts": None,
    "Interval": None,
    "Delay": None,
    "DelayFunction": None,
    "MaxDelay": None,
    "Unlimited": None,
}
_UPDATE: Schema = {
    "Stagger": None,
    "MaxParallel": None,
    "HealthCheck": None,
    "MinHealthyTime": None,
    "HealthyDeadline": None,
    "ProgressDeadline": None,
    "Canary": None,
    "AutoRevert": None,
    "AutoPromote": None,
}
_TASK: Schema = {
    "Name": None,
    "Driver": None,
    "User": None,
    "Lifecycle": None,
    "Config": None,  # checked per driver below
    "Constraints": [_CONSTRAINT],
    "Affinities": None,
    "Env": None,
    "Services": [_SERVICE],
    "Resources": _RESOURCES,
    "RestartPolicy": _RESTART,
    "Meta": None,
    "KillTimeout": None,
    "LogConfig": {"MaxFiles": None, "MaxFileSizeMB": None, "Disabled": None},
    "Artifacts": None,
    "Templates": None,
    "Leader": None,
    "ShutdownDelay": None,
    "KillSignal": None,
    "Kind": None,
}
_GROUP: Schema = {
    "Name": None,
    "Count": None,
    "Constraints": [_CONSTRAINT],
    "Affinities": None,
    "Spreads": None,
    "Tasks": [_TASK],
    "Networks": [_NETWORK],
    "Services": [_SERVICE],
    "RestartPolicy": _RESTART,
    "ReschedulePolicy": _RESCHEDULE,
    "EphemeralDisk": {"Sticky": None, "Migrate": None, "SizeMB": None},
    "Update": _UPDATE,
    "Migrate": None,
    "Meta": None,
    "Scaling": None,
    "ShutdownDelay": None,
    "Volumes": None,
    "Disconnect": None,
}
_JOB: Schema = {
    "ID": None,
    "Name": None,
    "Namespace": None,
    "Region": None,
    "Type": None,
    "Priority": None,
    "AllAtOnce": None,
    "Datacenters": None,
    "NodePool": None,
    "Constraints": [_CONSTRAINT],
    "Affinities": None,
    "Spreads": None,
    "TaskGroups": [_GROUP],
    "Update": _UPDATE,
    "Multiregion": None,
    "Periodic": None,
    "ParameterizedJob": None,
    "Reschedule": _RESCHEDULE,
    "Migrate": None,
    "Meta": None,
    "Stop": None,
    "ConsulToken": None,
    "VaultToken": None,
}
_DRIVER_CONFIG: dict[str, set[str]] = {
    "docker": {
        "image",
        "command",
        "args",
        "entrypoint",
        "ports",
        "work_dir",
        "network_mode",
        "force_pull",
        "labels",
        "volumes",
        "auth",
        "hostname",
        "privileged",
    },
    "raw_exec": {"command", "args", "work_dir", "oom_score_adj", "cgroup_v2_override"},
    "exec": {"command", "args", "work_dir", "pid_mode", "ipc_mode", "cap_add", "cap_drop"},
}
_LABEL = re.compile(r"^[a-zA-Z0-9_]+$")
_SERVICE_NAME = re.compile(r"^(?i:[a-z0-9]|[a-z0-9][a-z0-9-]{0,61}[a-z0-9])$")
_ACTIVE_KINDS = ("service", "batch", "system", "sysbatch")


class JobInvalid(Exception):
    """`Job.Validate` refused a value. Nomad's validation runs inside the Job.Register RPC
    and returns a plain go-multierror (nomad/job_endpoint_hooks.go, jobValidate), which the
    HTTP agent answers with 500 (command/agent/http.go, errCodeFromHandler)."""


class JobMalformed(JobInvalid):
    """The request body has the wrong shape: refused before any RPC, with a 400 (the
    agent's `CodedError(400, ...)` on decode errors, command/agent/job_endpoint.go). The
    fake is stricter than Go's decoder about unknown fields on purpose: a typo in what we
    render must fail a test, not be silently dropped."""


def validate_job(job: Any) -> None:
    """Raise JobMalformed for an unknown field anywhere, JobInvalid for a value Nomad would
    refuse."""
    if not isinstance(job, dict):
        raise JobMalformed("Job must be an object")
    _fields(job, _JOB, "Job")
    _job_values(job)


def canonicalize(job: dict[str, Any], namespace: str) -> dict[str, Any]:
    """Nomad's defaults (api.Job.Canonicalize), applied to a copy."""
    job = copy.deepcopy(job)
    job["Namespace"] = namespace  # the query parameter wins over Job.Namespace
    job.setdefault("Name", job["ID"])
    job.setdefault("Type", "service")
    job.setdefault("Priority", 50)
    job.setdefault("Region", "global")
    job["Datacenters"] = job.get("Datacenters") or ["*"]
    job.setdefault("Meta", {})
    job.setdefault("Stop", False)
    if job["Type"] in ("service", "system") and job.get("Update") is None:
        job["Update"] = {
            "Stagger": 30 * SECOND,
            "MaxParallel": 1,
            "HealthCheck": "checks",
            "MinHealthyTime": 10 * SECOND,
            "HealthyDeadline": 300 * SECOND,
            "ProgressDeadline": 600 * SECOND,
            "AutoRevert": False,
            "AutoPromote": False,
            "Canary": 0,
        }
    for group in job["TaskGroups"]:
        group.setdefault("Count", 1)
        group.setdefault("Networks", [])
        group.setdefault("Services", [])
        for task in group["Tasks"]:
            task.setdefault("Env", {})
            task.setdefault("KillTimeout", 5 * SECOND)
            resources = task.setdefault("Resources", {})
            resources.setdefault("CPU", 100)
            resources.setdefault("MemoryMB", 300)
    return job


def _fields(value: dict[str, Any], schema: Schema, path: str) -> None:
    for key, item in value.items():
        if key not in schema:
            raise JobMalformed(f"{path}.{key}: unknown field")
        sub = schema[key]
        if item is None or sub is None:
            continue
        if isinstance(sub, list):
            if not isinstance(item, list):
                raise JobMalformed(f"{path}.{key}: must be a list")
            for position, element in enumerate(item):
                if not isinstance(element, dict):
                    raise JobMalformed(f"{path}.{key}[{position}]: must be an object")
                _fields(element, sub[0], f"{path}.{key}[{position}]")
        else:
            if not isinstance(item, dict):
                raise JobMalformed(f"{path}.{key}: must be an object")
            _fields(item, sub, f"{path}.{key}")


def _int(value: Any, path: str, *, low: int | None = None, high: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise JobInvalid(f"{path}: must be an integer, got {value!r}")
    if low is not None and value < low:
        raise JobInvalid(f"{path}: must be >= {low}, got {value}")
    if high is not None and value > high:
        raise JobInvalid(f"{path}: must be <= {high}, got {value}")
    return value


def _string_map(value: Any, path: str) -> None:
    if value is None:
        return
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise JobInvalid(f"{path}: must map strings to strings")


def _job_values(job: dict[str, Any]) -> None:
    job_id = job.get("ID")
    if not isinstance(job_id, str) or not job_id or " " in job_id:
        raise JobInvalid("Job.ID: missing or contains a space")
    kind = job.get("Type", "service")
    if kind not in _ACTIVE_KINDS:
        raise JobInvalid(f"Job.Type: invalid job type {kind!r}")
    if "Priority" in job:
        _int(job["Priority"], "Job.Priority", low=1, high=100)
    _string_map(job.get("Meta"), "Job.Meta")
    if job.get("Update") is not None:
        if kind == "batch":
            raise JobInvalid("Job.Update: batch jobs cannot have an update block")
        _update(job["Update"], "Job.Update")
    groups = job.get("TaskGroups")
    if not groups:
        raise JobInvalid("Job.TaskGroups: missing job task groups")
    names = [group.get("Name") for group in groups]
    if len(set(names)) != len(names):
        raise JobInvalid("Job.TaskGroups: group names must be unique")
    for position, group in enumerate(groups):
        _group(group, f"Job.TaskGroups[{position}]")


def _update(update: dict[str, Any], path: str) -> None:
    durations = ("MinHealthyTime", "HealthyDeadline", "ProgressDeadline", "Stagger")
    for key in durations:
        if key in update:
            _int(update[key], f"{path}.{key}", low=0)
    if "MaxParallel" in update:
        _int(update["MaxParallel"], f"{path}.MaxParallel", low=0)
    if update.get("HealthCheck", "checks") not in ("checks", "task_states", "manual"):
        raise JobInvalid(f"{path}.HealthCheck: invalid health check {update['HealthCheck']!r}")
    # nomad/structs/structs.go, UpdateStrategy.Validate.
    canary = _int(update.get("Canary") or 0, f"{path}.Canary", low=0)
    if canary == 0 and update.get("AutoPromote"):
        raise JobInvalid("Auto Promote requires a Canary count greater than zero")
    healthy = update.get("MinHealthyTime", 10 * SECOND)
    deadline = update.get("HealthyDeadline", 300 * SECOND)
    if healthy >= deadline:
        raise JobInvalid(f"{path}: MinHealthyTime must be less than HealthyDeadline")
    progress = update.get("ProgressDeadline", 600 * SECOND)
    if progress and progress < deadline:
        raise JobInvalid(f"{path}: ProgressDeadline must be at least HealthyDeadline")


def _group(group: dict[str, Any], path: str) -> None:
    if not isinstance(group.get("Name"), str) or not group["Name"]:
        raise JobInvalid(f"{path}.Name: missing task group name")
    if "Count" in group:
        _int(group["Count"], f"{path}.Count", low=0)
    labels: set[str] = set()
    for position, network in enumerate(group.get("Networks") or ()):
        for kind in ("DynamicPorts", "ReservedPorts"):
            for port in network.get(kind) or ():
                label = port.get("Label")
                where = f"{path}.Networks[{position}].{kind}"
                if not isinstance(label, str) or not _LABEL.match(label):
                    raise JobInvalid(f"{where}: invalid port label {label!r}")
                if label in labels:
                    raise JobInvalid(f"{where}: port label {label!r} used twice")
                if "To" in port:
                    _int(port["To"], f"{where}.To", low=-1, high=65535)
                labels.add(label)
    if group.get("RestartPolicy") is not None:
        _restart(group["RestartPolicy"], f"{path}.RestartPolicy")
    for position, service in enumerate(group.get("Services") or ()):
        _service(service, labels, f"{path}.Services[{position}]")
    tasks = group.get("Tasks")
    if not tasks:
        raise JobInvalid(f"{path}.Tasks: missing tasks for task group")
    for position, task in enumerate(tasks):
        _task(task, labels, f"{path}.Tasks[{position}]")


def _restart(policy: dict[str, Any], path: str) -> None:
    attempts = _int(policy.get("Attempts", 0), f"{path}.Attempts", low=0)
    interval = _int(policy.get("Interval", 0), f"{path}.Interval", low=0)
    delay = _int(policy.get("Delay", 0), f"{path}.Delay", low=0)
    if policy.get("Mode", "fail") not in ("fail", "delay"):
        raise JobInvalid(f"{path}.Mode: must be fail or delay")
    if attempts and attempts * delay > interval:
        raise JobInvalid(
            f"{path}: cannot restart {attempts} times with delay {delay} in {interval}"
        )


def _service(service: dict[str, Any], labels: set[str], path: str) -> None:
    name = service.get("Name")
    if not isinstance(name, str) or not _SERVICE_NAME.match(name):
        raise JobInvalid(f"{path}.Name: service name must be a valid RFC 1123 label: {name!r}")
    if service.get("Provider", "consul") not in ("consul", "nomad"):
        raise JobInvalid(f"{path}.Provider: must be consul or nomad")
    port = service.get("PortLabel")
    if port and port not in labels:
        raise JobInvalid(f"{path}.PortLabel: port label {port!r} is not defined")
    for position, check in enumerate(service.get("Checks") or ()):
        where = f"{path}.Checks[{position}]"
        kind = check.get("Type")
        if kind not in ("http", "tcp", "grpc", "script"):
            raise JobInvalid(f"{where}.Type: invalid check type {kind!r}")
        if kind == "http" and not check.get("Path"):
            raise JobInvalid(f"{where}.Path: http checks need a path")
        # Nomad's minimum; also what catches a duration written in seconds.
        _int(check.get("Interval"), f"{where}.Interval", low=SECOND)
        _int(check.get("Timeout"), f"{where}.Timeout", low=SECOND)
        if check.get("PortLabel") and check["PortLabel"] not in labels:
            raise JobInvalid(f"{where}.PortLabel: port label {check['PortLabel']!r} is not defined")


def _task(task: dict[str, Any], labels: set[str], path: str) -> None:
    if not isinstance(task.get("Name"), str) or not task["Name"]:
        raise JobInvalid(f"{path}.Name: missing task name")
    driver = task.get("Driver")
    if driver not in _DRIVER_CONFIG:
        raise JobInvalid(f"{path}.Driver: unknown driver {driver!r}")
    config = task.get("Config") or {}
    for key in config:
        if key not in _DRIVER_CONFIG[driver]:
            raise JobInvalid(f"{path}.Config.{key}: unknown field for the {driver} driver")
    if driver == "docker" and not isinstance(config.get("image"), str):
        raise JobInvalid(f"{path}.Config.image: the docker driver needs an image")
    if driver in ("raw_exec", "exec") and not isinstance(config.get("command"), str):
        raise JobInvalid(f"{path}.Config.command: the {driver} driver needs a command")
    for port in config.get("ports") or ():
        if port not in labels:
            raise JobInvalid(f"{path}.Config.ports: port label {port!r} is not defined")
    for key in ("args", "entrypoint"):
        if key in config and not (
            isinstance(config[key], list) and all(isinstance(a, str) for a in config[key])
        ):
            raise JobInvalid(f"{path}.Config.{key}: must be a list of strings")
    _string_map(task.get("Env"), f"{path}.Env")
    if "KillTimeout" in task:
        _int(task["KillTimeout"], f"{path}.KillTimeout", low=0)
    resources = task.get("Resources") or {}
    if "CPU" in resources:
        _int(resources["CPU"], f"{path}.Resources.CPU", low=1)
    if "MemoryMB" in resources:
        _int(resources["MemoryMB"], f"{path}.Resources.MemoryMB", low=10)
    for position, service in enumerate(task.get("Services") or ()):
        _service(service, labels, f"{path}.Services[{position}]")
