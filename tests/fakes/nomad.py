"""A fake Nomad cluster with one client node: the state machine behind the fake HTTP API.

What it models, with Nomad's field names and status codes:

- jobs with versions, `JobModifyIndex` check-and-set, `PreserveCounts`, stop and purge;
- allocations named `<job>.<group>[<index>]`, placed per `Count`, moving
  pending -> running (-> complete for batch) one step at a time;
- deployments for service jobs with an update block: created by any placement,
  rolling `MaxParallel` replacements at a time, healthy one step after running,
  failed when an allocation fails, then auto-revert to the last stable version;
- a Raft-like index raised by every change, and a bounded buffer of event frames.

Nothing moves by itself: `step()` makes one round of progress and `settle()` steps until
nothing changes, so tests decide when things happen (the server can also tick on a
timer). All methods are thread-safe: the HTTP server calls them from its own thread.

This module answers the API calls; nomad_placement.py is the scheduler (placements,
deployments, events), nomad_progress.py what `step()` moves, nomad_schema.py the job
JSON accepted, nomad_objects.py the stored objects and the fault switches, and
nomad_server.py serves it all over HTTP.
"""

from __future__ import annotations

import copy
import re
import threading
from collections import deque
from typing import Any

from tests.fakes.nomad_objects import (
    ACTIVE_DEPLOYMENT,
    FakeAlloc,
    FakeError,
    FakeJob,
    Faults,
    new_id,
    now_ns,
)
from tests.fakes.nomad_progress import Progress
from tests.fakes.nomad_schema import JobInvalid, JobMalformed, canonicalize, validate_job

__all__ = ["FakeNomad"]

_REGISTER_KEYS = {
    "Job",
    "EnforceIndex",
    "JobModifyIndex",
    "PreserveCounts",
    "PreserveResources",
    "PolicyOverride",
    "EvalPriority",
    "Submission",
    "Namespace",
    "Region",
    "SecretID",
}
_FILTER_TERM = re.compile(r'^\s*JobID\s*==\s*"([^"]*)"\s*$')


class FakeNomad(Progress):
    """The cluster state. `faults`, `token` (None: ACLs off) and `namespaces` are public."""

    def __init__(self, *, event_buffer: int = 100, host_ip: str = "127.0.0.1") -> None:
        self.lock = threading.RLock()
        self.faults = Faults()
        self.token: str | None = None
        self.namespaces = {"default"}
        self.host_ip = host_ip
        self.index = 10
        self.jobs: dict[tuple[str, str], FakeJob] = {}
        self.allocs: dict[str, FakeAlloc] = {}
        self.deployments: dict[str, dict[str, Any]] = {}
        self.frames: deque[dict[str, Any]] = deque(maxlen=event_buffer)
        self.evicted = 0  # index of the newest frame pushed out of the buffer
        self.next_port = 20000
        # The Nomad version of the client node (drivers' options differ by version).
        self.client_version = (1, 9)
        # Each restart request: (alloc ID, the ClientStatus of the job's allocations then).
        self.restarts: list[tuple[str, dict[str, str]]] = []

    # -- reads ----------------------------------------------------------------------------

    def leader(self) -> str:
        return f"{self.host_ip}:4647"

    def list_jobs(self, namespace: str, *, prefix: str, meta: bool) -> tuple[list[Any], int]:
        with self.lock:
            stubs = []
            for (ns, job_id), job in sorted(self.jobs.items()):
                if ns != namespace or not job_id.startswith(prefix):
                    continue
                stub = {
                    key: job.spec.get(key)
                    for key in ("ID", "ParentID", "Name", "Namespace", "Datacenters", "Type")
                }
                stub.update(
                    {
                        "Priority": job.spec["Priority"],
                        "Status": self.job_status(job),
                        "StatusDescription": "",
                        "Stop": job.stopped,
                        "Stable": job.stable,
                        "Version": job.version,
                        "SubmitTime": job.submit_time,
                        "CreateIndex": job.create_index,
                        "ModifyIndex": job.modify_index,
                        "JobModifyIndex": job.job_modify_index,
                    }
                )
                if meta:
                    stub["Meta"] = copy.deepcopy(job.spec.get("Meta") or {})
                stubs.append(stub)
            return stubs, self.index

    def read_job(self, namespace: str, job_id: str) -> tuple[dict[str, Any], int]:
        with self.lock:
            job = self.job(namespace, job_id)
            return job.document(self.job_status(job)), job.modify_index

    def job_versions(self, namespace: str, job_id: str) -> tuple[dict[str, Any], int]:
        """`GET /v1/job/:id/versions`: every version kept, newest first, each a full job
        (command/agent/job_endpoint.go, jobVersions)."""
        with self.lock:
            job = self.job(namespace, job_id)
            versions = []
            for version, (spec, stable) in sorted(job.history.items(), reverse=True):
                doc = job.document(self.job_status(job)) if version == job.version else spec
                doc = copy.deepcopy(doc)
                doc.update({"Version": version, "Stable": stable})
                versions.append(doc)
            return {"Versions": versions, "Diffs": None}, job.modify_index

    def job_allocations(self, namespace: str, job_id: str, *, all_: bool) -> tuple[list[Any], int]:
        with self.lock:
            job = self.job(namespace, job_id)
            stubs = [
                alloc.stub(resources=False)
                for alloc in self.allocs.values()
                if alloc.doc["Namespace"] == namespace
                and alloc.doc["JobID"] == job_id
                and (all_ or alloc.job_create_index == job.create_index)
            ]
            return stubs, self.index

    def job_deployments(self, namespace: str, job_id: str) -> tuple[list[Any], int]:
        with self.lock:
            job = self.job(namespace, job_id)
            found = [
                copy.deepcopy(d)
                for d in self.deployments.values()
                if d["Namespace"] == namespace
                and d["JobID"] == job_id
                and d["JobCreateIndex"] == job.create_index
            ]
            found.sort(key=lambda d: d["CreateIndex"], reverse=True)
            return found, self.index

    def list_allocations(
        self, namespace: str, *, filter_: str, resources: bool
    ) -> tuple[list[Any], int]:
        with self.lock:
            wanted = _job_filter(filter_)
            stubs = [
                alloc.stub(resources=resources)
                for alloc in self.allocs.values()
                if alloc.doc["Namespace"] == namespace
                and (wanted is None or alloc.doc["JobID"] in wanted)
            ]
            return stubs, self.index

    def list_deployments(self, namespace: str, *, filter_: str) -> tuple[list[Any], int]:
        with self.lock:
            wanted = _job_filter(filter_)
            found = [
                copy.deepcopy(d)
                for d in self.deployments.values()
                if d["Namespace"] == namespace and (wanted is None or d["JobID"] in wanted)
            ]
            return found, self.index

    def read_allocation(self, alloc_id: str) -> tuple[dict[str, Any], int]:
        with self.lock:
            alloc = self._alloc(alloc_id)
            doc = copy.deepcopy(alloc.doc)
            job = self.jobs.get((doc["Namespace"], doc["JobID"]))
            if job is not None:
                doc["Job"] = job.document(self.job_status(job))
            return doc, int(doc["ModifyIndex"])

    def allocation_checks(self, alloc_id: str) -> dict[str, Any]:
        with self.lock:
            alloc = self._alloc(alloc_id)
            job = self.jobs.get((alloc.doc["Namespace"], alloc.doc["JobID"]))
            if job is None or alloc.client != "running":
                return {}
            results = {}
            for group in job.spec["TaskGroups"]:
                for service in group.get("Services") or ():
                    for check in service.get("Checks") or ():
                        # client/serviceregistration/checks: the latest result per check.
                        failing = alloc_id in self.faults.failing_checks
                        results[new_id()[:8]] = {
                            "Check": check["Name"],
                            "Group": f"{job.id}.{group['Name']}",
                            "Mode": "healthiness",
                            "Output": (
                                "HTTP GET: 503 Service Unavailable"
                                if failing
                                else "HTTP GET: 200 OK"
                            ),
                            "Service": service["Name"],
                            "Status": "failure" if failing else "success",
                            "StatusCode": 503 if failing else 200,
                            "Timestamp": now_ns() // 1_000_000_000,
                        }
            return results

    def scale_status(self, namespace: str, job_id: str) -> dict[str, Any]:
        with self.lock:
            job = self.job(namespace, job_id)
            groups = {}
            for group in job.spec["TaskGroups"]:
                mine = [
                    a for a in self.incarnation_allocs(job) if a.doc["TaskGroup"] == group["Name"]
                ]
                groups[group["Name"]] = {
                    "Desired": group["Count"],
                    "Placed": sum(a.desired == "run" for a in mine),
                    "Running": sum(a.client == "running" for a in mine),
                    "Healthy": sum(a.healthy is True for a in mine),
                    "Unhealthy": sum(a.healthy is False for a in mine),
                    "Events": [],
                }
            return {
                "JobID": job.id,
                "Namespace": namespace,
                "JobModifyIndex": job.job_modify_index,
                "JobStopped": job.stopped,
                "TaskGroups": groups,
            }

    # -- writes ---------------------------------------------------------------------------

    def register(self, namespace: str, body: Any, *, path_id: str | None = None) -> dict[str, Any]:
        with self.lock:
            if not isinstance(body, dict) or not isinstance(body.get("Job"), dict):
                raise FakeError(400, "Job must be specified")
            for key in body:
                if key not in _REGISTER_KEYS:
                    raise FakeError(400, f"{key}: unknown field in the register request")
            try:
                validate_job(body["Job"])
            except JobMalformed as exc:
                raise FakeError(400, str(exc)) from None
            except JobInvalid as exc:
                raise FakeError(500, multierror([str(exc)])) from None
            if path_id is not None and body["Job"]["ID"] != path_id:
                raise FakeError(400, "Job ID does not match name")
            if namespace not in self.namespaces:
                # An admission validator (nomad/job_endpoint_validators.go): part of the
                # validation multierror, answered with 500.
                raise FakeError(
                    500,
                    multierror(
                        [f'job "{body["Job"]["ID"]}" is in nonexistent namespace "{namespace}"']
                    ),
                )
            spec = canonicalize(body["Job"], namespace)
            existing = self.jobs.get((namespace, spec["ID"]))
            if self.faults.take_race():
                existing = self._write_as_operator(namespace, spec, existing)
            if body.get("EnforceIndex"):
                _enforce(existing, int(body.get("JobModifyIndex") or 0))
            if existing is not None:
                old_type, new_type = existing.spec["Type"], spec["Type"]
                if old_type != new_type:
                    # validateJobUpdate inside the Register RPC: uncoded, so 500.
                    raise FakeError(
                        500, f'cannot update job from type "{old_type}" to "{new_type}"'
                    )
                if body.get("PreserveCounts"):
                    counts = {g["Name"]: g["Count"] for g in existing.spec["TaskGroups"]}
                    for group in spec["TaskGroups"]:
                        group["Count"] = counts.get(group["Name"], group["Count"])
                if existing.spec == spec:
                    # Nomad only creates an evaluation for an unchanged job.
                    return self.write_reply(existing.job_modify_index)
            return self.upsert(namespace, spec, existing)

    def _write_as_operator(
        self, namespace: str, spec: dict[str, Any], existing: FakeJob | None
    ) -> FakeJob:
        """Another writer (`nomad job run`, a second console) registers the job first."""
        other = copy.deepcopy(existing.spec if existing is not None else spec)
        other["Meta"] = {**(other.get("Meta") or {}), "edited-by": f"operator@{self.index}"}
        self.upsert(namespace, other, existing)
        return self.jobs[(namespace, spec["ID"])]

    def deregister(self, namespace: str, job_id: str, *, purge: bool) -> dict[str, Any]:
        with self.lock:
            job = self.jobs.get((namespace, job_id))
            if job is None:
                return {"EvalID": "", "EvalCreateIndex": 0, "JobModifyIndex": 0, "Index": 0}
            if not purge:
                spec = copy.deepcopy(job.spec)
                spec["Stop"] = True
                return self.upsert(namespace, spec, job, event="JobDeregistered")
            index = self.bump()
            before = job.document(self.job_status(job))
            del self.jobs[(namespace, job_id)]
            self.emit(index, [self.job_event("JobDeregistered", before)])
            self.stop_job_allocs(job, "alloc not needed since job was purged")
            return self.write_reply(index)

    def scale(self, namespace: str, job_id: str, body: Any) -> dict[str, Any]:
        with self.lock:
            job = self.jobs.get((namespace, job_id))
            if job is None:
                raise FakeError(404, f'job "{job_id}" not found')
            if not isinstance(body, dict):
                raise FakeError(400, "invalid scaling request")
            group_name = (body.get("Target") or {}).get("Group")
            spec = copy.deepcopy(job.spec)
            group = next((g for g in spec["TaskGroups"] if g["Name"] == group_name), None)
            if group is None:
                raise FakeError(
                    400, f'task group "{group_name}" specified for scaling does not exist in job'
                )
            count = body.get("Count")
            if count is None:
                return self.write_reply(job.job_modify_index)
            if not isinstance(count, int) or count < 0:
                raise FakeError(400, "scaling action count can't be negative")
            deployment = self.latest_deployment(job)
            if self.faults.deployment_running or (
                deployment is not None and deployment["Status"] in ACTIVE_DEPLOYMENT
            ):
                raise FakeError(400, "job scaling blocked due to active deployment")
            group["Count"] = count
            if spec == job.spec:
                return self.write_reply(job.job_modify_index)
            return self.upsert(namespace, spec, job)

    def evaluate(self, namespace: str, job_id: str, body: Any) -> dict[str, Any]:
        with self.lock:
            job = self.job(namespace, job_id)
            options = (body or {}).get("EvalOptions") or {}
            if options.get("ForceReschedule"):
                self.force_reschedule(job)
            return {"EvalID": new_id(), "EvalCreateIndex": self.index, "JobModifyIndex": 0}

    def promote(self, deployment_id: str, body: Any) -> dict[str, Any]:
        """PUT/POST /v1/deployment/promote/:id. The agent checks the body
        (command/agent/deployment_endpoint.go, 400s); Deployment.Promote
        (nomad/deployment_endpoint.go) answers "deployment not found" and "can't promote
        terminal deployment" as uncoded errors (500); the state store checks the canaries
        (see `promote_groups`). A deployment without canaries is promoted without a word.
        The reply is structs.DeploymentUpdateResponse; the promotion's evaluation then
        replaces the other allocations."""
        with self.lock:
            if not isinstance(body, dict) or not body.get("DeploymentID"):
                raise FakeError(400, "DeploymentID must be specified")
            if body["DeploymentID"] != deployment_id:
                raise FakeError(400, "Deployment ID does not match")
            deployment = self.deployments.get(deployment_id)
            if deployment is None:
                raise FakeError(500, "deployment not found")
            if deployment["Status"] not in ACTIVE_DEPLOYMENT:
                raise FakeError(500, "can't promote terminal deployment")
            groups = None if body.get("All") else list(body.get("Groups") or ())
            index = self.bump()
            events = self.promote_groups(deployment, groups, index)
            self.emit(index, events)
            job = self.jobs.get((deployment["Namespace"], deployment["JobID"]))
            if job is not None:
                self.schedule(job)
            return {
                "EvalID": new_id(),
                "EvalCreateIndex": index,
                "DeploymentModifyIndex": index,
                "RevertedJobVersion": None,
                "Index": index,
            }

    def kill_seconds(self, alloc_id: str) -> float:
        """How long a restart of this allocation blocks: the task's KillTimeout when the
        `slow_kill` fault makes tasks ignore their kill signal, else no time."""
        with self.lock:
            alloc = self.allocs.get(alloc_id)
            job = alloc and self.jobs.get((alloc.doc["Namespace"], alloc.doc["JobID"]))
            if not self.faults.slow_kill or job is None:
                return 0.0
            tasks = [t for g in job.spec["TaskGroups"] for t in g["Tasks"]]
            return max(int(t.get("KillTimeout") or 0) for t in tasks) / 1e9

    def restart_allocation(self, alloc_id: str, body: Any) -> dict[str, Any]:
        """The restart once the old task is dead: the task is pending until the next
        step starts it again (taskrunner restartImpl: kill, then run again)."""
        with self.lock:
            alloc = self._alloc(alloc_id)
            if alloc.client != "running":
                raise FakeError(500, "Task not running")
            task_name = (body or {}).get("TaskName") or ""
            states = alloc.doc["TaskStates"]
            if task_name and task_name not in states:
                raise FakeError(400, f'Failed to restart task "{task_name}": unknown task')
            self.restarts.append(
                (
                    alloc_id,
                    {
                        a.id: a.client
                        for a in self.allocs.values()
                        if a.doc["JobID"] == alloc.doc["JobID"] and a.desired == "run"
                    },
                )
            )
            for name, state in states.items():
                if task_name and name != task_name:
                    continue
                state["State"] = "pending"
                state["Restarts"] += 1
                state["LastRestart"] = self.time(now_ns())
                state["Events"] += [
                    self.task_event("Restart Signaled", "User requested running tasks to restart"),
                    self.task_event("Terminated", "Exit Code: 0", ExitCode=0),
                    self.task_event("Restarting", "Task restarting in 0s"),
                ]
                state["Events"] = state["Events"][-10:]  # Nomad keeps the last 10
            # An allocation with a pending task is pending (client/allocrunner, getClientStatus).
            alloc.doc["ClientStatus"] = "pending"
            alloc.doc["ClientDescription"] = "Tasks are restarting"
            self.touch(alloc)
            return {}

    # -- test helpers ---------------------------------------------------------------------

    def job(self, namespace: str, job_id: str) -> FakeJob:
        job = self.jobs.get((namespace, job_id))
        if job is None:
            raise FakeError(404, "job not found")
        return job

    def allocations_of(self, job_id: str, namespace: str = "default") -> list[dict[str, Any]]:
        """Full allocations of a job (every incarnation), oldest first."""
        with self.lock:
            return [
                copy.deepcopy(a.doc)
                for a in self.allocs.values()
                if a.doc["JobID"] == job_id and a.doc["Namespace"] == namespace
            ]

    def step(self) -> bool:
        """One round of progress everywhere; whether anything changed."""
        with self.lock:
            return self.advance()

    def settle(self, max_rounds: int = 100) -> int:
        """Step until nothing changes; the number of rounds that changed something."""
        rounds = 0
        while rounds < max_rounds and self.step():
            rounds += 1
        return rounds

    def stream_frames(self, *, start: int | None, after: int) -> list[dict[str, Any]] | None:
        """Frames for an event stream, or None when the reader fell behind the buffer
        (Nomad then ends the stream). The first read of a connection passes `start` (its
        `index` parameter, Nomad's rules: from the first frame at or above it, the oldest
        if it is older than the buffer, the newest again if it is in the future); later
        reads pass the last index sent as `after`."""
        with self.lock:
            frames = list(self.frames)
            if start is None:
                if self.evicted and after < self.evicted:
                    return None
                return [f for f in frames if f["Index"] > after]
            found = [f for f in frames if f["Index"] >= start]
            if not found and frames:
                return [frames[-1]]
            return found

    def _alloc(self, alloc_id: str) -> FakeAlloc:
        alloc = self.allocs.get(alloc_id)
        if alloc is None:
            raise FakeError(404, "alloc not found")
        return alloc


def multierror(errors: list[str]) -> str:
    """hashicorp/go-multierror's ListFormatFunc, the text of Nomad's validation errors."""
    points = "\n\t* ".join(errors)
    if len(errors) == 1:
        return f"1 error occurred:\n\t* {points}\n\n"
    return f"{len(errors)} errors occurred:\n\t* {points}\n\n"


def _enforce(existing: FakeJob | None, expected: int) -> None:
    # structs.Job.EnforceIndex (nomad/structs/job.go, RegisterEnforceIndexErrPrefix) fails
    # the Register RPC with a plain error, which the HTTP agent answers with 500.
    prefix = "Enforcing job modify index"
    if existing is None:
        if expected != 0:
            raise FakeError(500, f"{prefix} {expected}: job does not exist")
        return
    if expected == 0:
        raise FakeError(500, f"{prefix} 0: job already exists")
    if expected != existing.job_modify_index:
        raise FakeError(
            500,
            f"{prefix} {expected}: job exists with conflicting job modify index: "
            f"{existing.job_modify_index}",
        )


def _job_filter(expression: str) -> set[str] | None:
    """The subset of go-bexpr we send: `JobID == "a" or JobID == "b"`."""
    if not expression.strip():
        return None
    wanted = set()
    for term in expression.split(" or "):
        found = _FILTER_TERM.match(term)
        if found is None:
            raise FakeError(400, f"failed to read filter expression: {expression!r}")
        wanted.add(found.group(1))
    return wanted
