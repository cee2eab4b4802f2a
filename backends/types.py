"""Value types that cross the scheduler boundary.

They are ours, not Nomad's: a backend translates its own objects into these, and the
resolvers never see anything else.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "BackendHealth",
    "Canary",
    "CanaryState",
    "EventKind",
    "InstanceAction",
    "InstanceState",
    "InstanceStatus",
    "ProcJob",
    "ProcState",
    "RolloutStatus",
    "SchedulerEvent",
    "split_job_id",
]


class InstanceStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    FAILED = "failed"  # stopped by a crash or a failed start; may be restarted
    EXITED = "exited"  # stopped on request
    COMPLETE = "complete"  # a oneshot that finished with exit code 0


class InstanceAction(StrEnum):
    START = "start"
    STOP = "stop"
    RESTART = "restart"


class RolloutStatus(StrEnum):
    """Where the replacement of a proc's instances by its current spec stands."""

    NONE = "none"  # every instance runs the current spec, or none is being replaced
    RUNNING = "running"  # instances are being replaced (or restarted) one at a time
    STOPPED = "stopped"  # the last rollout stopped: a new instance was not ready


class EventKind(StrEnum):
    INSTANCE = "instance"  # one instance changed; `instance` holds its new snapshot
    PROC = "proc"  # the proc's job was created, updated, scaled or resized
    PROC_REMOVED = "proc_removed"  # the proc's job is gone


@dataclass(frozen=True, slots=True)
class Canary:
    """How an `apply` that replaces running instances rolls out with canaries: first
    `instances` instances of the new spec start beside the old ones, which all keep running;
    the rest are replaced only once the canaries are promoted (`Scheduler.promote`), or by
    the scheduler itself once every canary has stayed healthy `auto_promote_after` seconds.
    """

    instances: int
    auto_promote_after: int | None = None  # seconds; None: wait for a promote


@dataclass(frozen=True, slots=True)
class ProcJob:
    """Everything a backend needs to run one proc; its id is the LAIN pod-group name."""

    app: str
    proc: str
    proc_type: str  # "web" | "worker" | "oneshot" | "portal"
    meta_version: str
    image: str
    num_instances: int
    cpu: int
    memory_bytes: int
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    env: tuple[tuple[str, str], ...] = ()
    port: int | None = None
    port_protocol: str = "tcp"
    healthcheck: str = ""  # an HTTP path, web procs only
    working_dir: str = ""
    user: str = ""
    setup_time: int = 0
    kill_timeout: int = 10
    # Nomad: "docker" or "raw_exec"; the local backend always runs the cmd directly.
    driver: str = "docker"
    extra_meta: tuple[tuple[str, str], ...] = field(default=())
    # lain.yaml fields a backend must honour or refuse, never drop silently.
    persistent_dirs: tuple[str, ...] = ()
    mountpoints: tuple[str, ...] = ()
    secret_files: tuple[str, ...] = ()
    logs: tuple[str, ...] = ()
    stateful: bool = False
    container_healthcheck: str = ""  # the command; "" when none (or switched off)
    # lain.yaml `filters` beyond LAIN's default group: `(constraint|affinity):<k>(==|!=)<v>`.
    filters: tuple[str, ...] = ()
    # How this apply rolls out, not what runs: left out of the spec hash (the reconciler's
    # desired jobs never carry it, and a canary rollout is no drift) and of what a backend
    # stores as the job's spec, so a later resize or start rolls out plainly.
    canary: Canary | None = None

    @property
    def job_id(self) -> str:
        return f"{self.app}.{self.proc_type}.{self.proc}"

    @property
    def is_service(self) -> bool:
        """Long-running (restarted when it stops) rather than run-once."""
        return self.proc_type != "oneshot"

    def spec_hash(self) -> str:
        """A stable digest of what would change the running instances.

        The instance count is left out on purpose: scaling must not look like drift of the
        spec, and a redeploy keeps the count (LAIN's PUT never changes it).
        """
        # Asked for on every state read and every scale: computing it costs about a
        # millisecond (asdict, JSON, SHA-256), so equal jobs share one computation.
        return _spec_hash(self)

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> ProcJob:
        """A ProcJob from `asdict` output read back from JSON: unknown keys are dropped,
        lists become tuples again (env and extra_meta hold string pairs). Raises TypeError
        when a required field is missing."""
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in payload.items():
            if key not in known:
                continue
            if key == "canary":
                value = Canary(**value) if isinstance(value, Mapping) else None
            elif isinstance(value, list):
                if key in ("env", "extra_meta"):
                    value = tuple((str(k), str(v)) for k, v in value)
                else:
                    value = tuple(value)
            values[key] = value
        return cls(**values)

    def with_count(self, num_instances: int) -> ProcJob:
        return replace(self, num_instances=num_instances)

    def with_resources(self, *, cpu: int, memory_bytes: int) -> ProcJob:
        return replace(self, cpu=cpu, memory_bytes=memory_bytes)


_LATER_FIELDS = (
    "persistent_dirs",
    "mountpoints",
    "secret_files",
    "logs",
    "stateful",
    "container_healthcheck",
    "filters",
)
_DEFAULTS = {f.name: f.default for f in fields(ProcJob) if f.name in _LATER_FIELDS}


@functools.lru_cache(maxsize=4096)
def _spec_hash(job: ProcJob) -> str:
    payload = asdict(job)
    del payload["num_instances"]
    del payload["canary"]
    for name in _LATER_FIELDS:
        # Fields added later count only when set, so adding them changed no hash (and
        # redeployed nothing) of a job that does not use them.
        if payload[name] == _DEFAULTS[name]:
            del payload[name]
    encoded = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


def split_job_id(job_id: str) -> tuple[str, str, str]:
    """`<app>.<proctype>.<proc>` back into its parts; app names may hold dots, procs may not."""
    app, proc_type, proc = job_id.rsplit(".", 2)
    return app, proc_type, proc


@dataclass(frozen=True, slots=True)
class InstanceState:
    job_id: str
    number: int  # from 1, as in LAIN
    status: InstanceStatus
    healthy: bool | None = None  # None: the proc has no health check
    instance_id: str = ""  # process id / allocation id
    ip: str | None = None
    port: int | None = None  # the host port the instance listens on
    node: str | None = None
    started_at: datetime | None = None
    restarts: int = 0
    last_error: str = ""
    exit_code: int | None = None
    env: tuple[str, ...] = ()  # "K=V" as the instance really got it
    release: str = ""  # the meta version the instance was started with; "" when unknown


@dataclass(frozen=True, slots=True)
class CanaryState:
    """The canaries of a proc's rollout under way (see `Canary`)."""

    desired: int
    placed: int  # canaries started so far
    healthy: int  # of them, those the scheduler judged healthy
    promoted: bool  # the rest of the instances are being replaced
    auto_promote: bool  # the scheduler promotes them itself once all are healthy

    @property
    def awaiting_promotion(self) -> bool:
        """Placed and healthy, and only a promotion lets the rollout go on."""
        return not self.promoted and not self.auto_promote and self.healthy >= self.desired


@dataclass(frozen=True, slots=True)
class ProcState:
    """What the backend knows of one proc's job; `exists` is False when it has none."""

    job_id: str
    exists: bool
    num_instances: int = 0
    cpu: int = 0
    memory_bytes: int = 0
    image: str = ""
    meta_version: str = ""
    spec_hash: str = ""
    instances: tuple[InstanceState, ...] = ()
    last_error: str = ""
    rollout: RolloutStatus = RolloutStatus.NONE
    # The spec hash of a release the scheduler itself rolled back (its rollout failed and
    # an earlier, stable spec runs again); "" when none. Applying that spec again would
    # only fail and roll back again.
    reverted_spec_hash: str = ""
    # The canaries of the rollout under way (`rollout` RUNNING); None without canaries.
    canary: CanaryState | None = None
    # Releases of live instances that `instances` does not show, because another instance
    # holds their number (a canary shares the slot of the old instance it will replace).
    shadowed_releases: tuple[str, ...] = ()

    @classmethod
    def missing(cls, job_id: str) -> ProcState:
        return cls(job_id=job_id, exists=False)


@dataclass(frozen=True, slots=True)
class SchedulerEvent:
    cursor: int  # strictly increasing within one backend's lifetime
    kind: EventKind
    job_id: str
    instance: InstanceState | None = None
    proc: ProcState | None = None


@dataclass(frozen=True, slots=True)
class BackendHealth:
    ok: bool
    detail: str = ""
