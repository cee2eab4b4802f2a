"""The objects a fake Nomad keeps, in Nomad's JSON shapes: jobs with versions,
allocations and deployments, and the faults a test can switch on."""

from __future__ import annotations

import copy
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "ACTIVE_DEPLOYMENT",
    "NODE_ID",
    "NODE_NAME",
    "FakeAlloc",
    "FakeError",
    "FakeJob",
    "Faults",
    "new_id",
    "now_ns",
    "rfc3339",
]

NODE_ID = "5d0f0a0e-2b1c-4e8e-9a53-5e1c2f6b7a10"
NODE_NAME = "fake-node-1"
ZERO_TIME = "0001-01-01T00:00:00Z"
ACTIVE_DEPLOYMENT = ("running", "pending", "paused", "blocked", "unblocking", "initializing")
_STUB_FIELDS = (
    "ID",
    "EvalID",
    "Name",
    "Namespace",
    "NodeID",
    "NodeName",
    "JobID",
    "TaskGroup",
    "DesiredStatus",
    "DesiredDescription",
    "DesiredTransition",
    "ClientStatus",
    "ClientDescription",
    "TaskStates",
    "DeploymentStatus",
    "FollowupEvalID",
    "NextAllocation",
    "PreviousAllocation",
    "RescheduleTracker",
    "CreateIndex",
    "ModifyIndex",
    "CreateTime",
    "ModifyTime",
)


class FakeError(Exception):
    """An HTTP error answer: Nomad sends plain text bodies with its error statuses."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def new_id() -> str:
    return str(uuid.uuid4())


def now_ns() -> int:
    return time.time_ns()


def rfc3339(ns: int) -> str:
    """Nomad's time format: RFC 3339 with nanoseconds."""
    moment = datetime.fromtimestamp(ns // 1_000_000_000, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ns % 1_000_000_000:09d}Z"


@dataclass
class FakeJob:
    """One incarnation of a job: `spec` is the canonical registered JSON."""

    namespace: str
    spec: dict[str, Any]
    version: int
    create_index: int
    modify_index: int
    job_modify_index: int
    submit_time: int
    stable: bool = False
    # version -> (spec, stable): what auto-revert goes back to.
    history: dict[int, tuple[dict[str, Any], bool]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.spec["ID"])

    @property
    def batch(self) -> bool:
        return self.spec["Type"] == "batch"

    @property
    def stopped(self) -> bool:
        return bool(self.spec.get("Stop"))

    @property
    def update(self) -> dict[str, Any] | None:
        update = self.spec.get("Update")
        if self.batch or not update or not update.get("MaxParallel"):
            return None
        return update

    def document(self, status: str) -> dict[str, Any]:
        doc = copy.deepcopy(self.spec)
        doc.update(
            {
                "Status": status,
                "StatusDescription": "",
                "Stable": self.stable,
                "Version": self.version,
                "SubmitTime": self.submit_time,
                "CreateIndex": self.create_index,
                "ModifyIndex": self.modify_index,
                "JobModifyIndex": self.job_modify_index,
            }
        )
        return doc


@dataclass
class FakeAlloc:
    """An allocation: `doc` is the full Nomad object (without the embedded Job)."""

    doc: dict[str, Any]
    job_create_index: int
    version: int
    slot: int
    batch: bool
    image: str
    rounds: int = 0  # steps spent running, for batch completion and health

    @property
    def id(self) -> str:
        return str(self.doc["ID"])

    @property
    def client(self) -> str:
        return str(self.doc["ClientStatus"])

    @property
    def desired(self) -> str:
        return str(self.doc["DesiredStatus"])

    @property
    def deployment_id(self) -> str:
        return str(self.doc.get("DeploymentID") or "")

    @property
    def healthy(self) -> bool | None:
        status = self.doc.get("DeploymentStatus") or {}
        return status.get("Healthy")

    @property
    def canary(self) -> bool:
        status = self.doc.get("DeploymentStatus") or {}
        return bool(status.get("Canary"))

    def occupies_slot(self) -> bool:
        """Counted by the scheduler for its index (a failed one waits to be rescheduled)."""
        if self.desired != "run":
            return False
        if self.client in ("pending", "running"):
            return True
        if self.client == "failed":
            return not self.doc.get("NextAllocation")
        return self.client == "complete" and self.batch

    def stub(self, *, resources: bool) -> dict[str, Any]:
        stub = {key: copy.deepcopy(self.doc.get(key)) for key in _STUB_FIELDS}
        stub["JobType"] = "batch" if self.batch else "service"
        stub["JobVersion"] = self.version
        if resources:
            stub["AllocatedResources"] = copy.deepcopy(self.doc["AllocatedResources"])
        return stub


class Faults:
    """Switches that make the fake misbehave; all start off.

    - `http_500`: every request answers 500; `fail_next(n, after=k)`: only n of them do,
      after k more have been answered normally.
    - `hang`: requests wait `hang_seconds` (or until `hang` is cleared) and then answer
      504 without doing anything, as a server that never answers in time.
      `hang_writes`: the same for writes only (PUT, POST, DELETE); reads still answer.
    - `refuse_connections()` / `accept_connections()`: close and reopen the listening
      socket (connections are refused meanwhile; open streams are cut).
    - `drop_stream_after(n)`: the event stream ends after n more frames (0: at the next).
    - `stream_silent`: event streams send nothing, not even heartbeats.
    - `stream_flaps`: event streams open, send the initial heartbeat and end at once (a
      proxy or load balancer that cuts long requests).
    - `deployment_running`: scaling answers 400 "job scaling blocked due to active
      deployment", whatever the deployments really are.
    - `slow_kill`: tasks ignore their kill signal, so an allocation restart blocks for the
      task's whole KillTimeout before it answers.
    - `failing_checks`: IDs of allocations whose checks now fail (the app broke after
      its deployment judged it healthy; Nomad does not revise that verdict).
    - `crash_image(image)`: allocations running that image fail on start (exit code 1).
    - `race_registers(n)`: the next n job registrations each find that another writer
      (an operator's `nomad job run`) registered the job just before them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.http_500 = False
        self.hang = False
        self.hang_writes = False
        self.hang_seconds = 30.0
        self.stream_silent = False
        self.stream_flaps = False
        self.slow_kill = False
        self.deployment_running = False
        self.crashing_images: set[str] = set()
        self.failing_checks: set[str] = set()
        self._fail_next = 0
        self._pass_first = 0
        self._drop_after: int | None = None
        self._races = 0
        self._refuse: Any = None
        self._accept: Any = None

    def fail_next(self, count: int, *, after: int = 0) -> None:
        """Let `after` requests through, then answer the next `count` with a 500."""
        with self._lock:
            self._pass_first, self._fail_next = after, count

    def take_failure(self) -> bool:
        """Whether this request must fail with a 500 (counts down `fail_next`)."""
        with self._lock:
            if self.http_500:
                return True
            if self._fail_next > 0 and self._pass_first > 0:
                self._pass_first -= 1
                return False
            if self._fail_next > 0:
                self._fail_next -= 1
                return True
            return False

    def race_registers(self, count: int) -> None:
        with self._lock:
            self._races = count

    def take_race(self) -> bool:
        with self._lock:
            if self._races <= 0:
                return False
            self._races -= 1
            return True

    def drop_stream_after(self, frames: int) -> None:
        with self._lock:
            self._drop_after = frames

    def drop_now(self) -> bool:
        """Called by a stream before each frame: whether to end the stream instead (the
        countdown is shared by the open streams and ends with the first drop)."""
        with self._lock:
            if self._drop_after is None:
                return False
            if self._drop_after <= 0:
                self._drop_after = None
                return True
            self._drop_after -= 1
            return False

    def crash_image(self, image: str) -> None:
        self.crashing_images.add(image)

    def connect(self, *, refuse: Any, accept: Any) -> None:
        """Called by the server that owns the listening socket."""
        self._refuse, self._accept = refuse, accept

    def refuse_connections(self) -> None:
        if self._refuse is None:
            raise RuntimeError("no server is serving this fake")
        self._refuse()

    def accept_connections(self) -> None:
        if self._accept is None:
            raise RuntimeError("no server is serving this fake")
        self._accept()

    def reset(self) -> None:
        """Every switch off (a closed socket stays closed: see accept_connections)."""
        self.http_500 = self.hang = self.stream_silent = self.deployment_running = False
        self.hang_writes = False
        self.stream_flaps = self.slow_kill = False
        self.crashing_images.clear()
        self.failing_checks.clear()
        self.fail_next(0)
        with self._lock:
            self._drop_after = None
            self._races = 0
