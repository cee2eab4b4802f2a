"""The fake Nomad's client and deployment watcher: what `step()` moves forward.

Allocations go pending -> running (-> complete for batch, or failed for a crashing
image), become healthy one step after running, and deployments finish, roll on or fail
(and auto-revert) accordingly. Every method expects the caller to hold `self.lock`.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.fakes.nomad_objects import ACTIVE_DEPLOYMENT, ZERO_TIME, FakeAlloc, FakeJob, now_ns
from tests.fakes.nomad_placement import Placement, footprint

__all__ = ["Progress"]


class Progress(Placement):
    client_version: tuple[int, int]

    def advance(self) -> bool:
        changed = False
        for alloc in list(self.allocs.values()):
            changed = self._progress(alloc) or changed
        for deployment in list(self.deployments.values()):
            if deployment["Status"] in ACTIVE_DEPLOYMENT:
                changed = self._progress_deployment(deployment) or changed
        return changed

    def _progress(self, alloc: FakeAlloc) -> bool:
        if alloc.desired != "run":
            if alloc.client not in ("pending", "running"):
                return False
            self._finish(alloc, "All tasks have completed", killed=True)
            return True
        if alloc.client == "pending" and alloc.doc["TaskStates"]:
            self._resume(alloc)  # restarted: its task runs again
            return True
        if alloc.client == "pending":
            refused = self._driver_refusal(alloc)
            if refused:
                self._crash(alloc, event=("Failed Validation", refused))
            elif alloc.image in self.faults.crashing_images:
                self._crash(alloc)
            else:
                self._start(alloc)
            return True
        if alloc.client != "running":
            return False
        if alloc.batch:
            self._finish(alloc, "All tasks have completed", killed=False)
            return True
        if alloc.deployment_id and alloc.healthy is None:
            alloc.doc["DeploymentStatus"] = {
                "Healthy": True,
                "Timestamp": self.time(now_ns()),
                "Canary": alloc.canary,
                "ModifyIndex": self.index + 1,
            }
            self.touch(alloc)
            return True
        return False

    def _start(self, alloc: FakeAlloc) -> None:
        now = now_ns()
        alloc.doc["ClientStatus"] = "running"
        alloc.doc["ClientDescription"] = "Tasks are running"
        alloc.doc["TaskStates"] = {
            name: {
                "State": "running",
                "Failed": False,
                "Restarts": 0,
                "LastRestart": ZERO_TIME,
                "StartedAt": self.time(now),
                "FinishedAt": ZERO_TIME,
                "Events": [
                    self.task_event("Received", "Task received by client"),
                    self.task_event("Task Setup", "Building Task Directory"),
                    self.task_event("Started", "Task started by client"),
                ],
            }
            for name in alloc.doc["AllocatedResources"]["Tasks"]
        }
        self.touch(alloc)

    def _resume(self, alloc: FakeAlloc) -> None:
        now = now_ns()
        alloc.doc["ClientStatus"] = "running"
        alloc.doc["ClientDescription"] = "Tasks are running"
        for state in alloc.doc["TaskStates"].values():
            if state["State"] == "pending":
                state["State"] = "running"
                state["StartedAt"] = self.time(now)
                state["Events"] = [
                    *state["Events"],
                    self.task_event("Started", "Task started by client"),
                ][-10:]
        self.touch(alloc)

    def _driver_refusal(self, alloc: FakeAlloc) -> str:
        """Why the client's driver refuses the task config, or "". Nomad's servers do not
        check driver configs (nomad/job_endpoint_hooks.go: "Validate the driver
        configurations. These had to be removed"); the client decodes them against the
        driver's hclspec when the task starts. raw_exec has `work_dir` only from 1.9
        (drivers/rawexec/driver.go)."""
        job = self.jobs.get((alloc.doc["Namespace"], alloc.doc["JobID"]))
        if job is None or alloc.version not in job.history or self.client_version >= (1, 9):
            return ""
        for group in job.history[alloc.version][0]["TaskGroups"]:
            for task in group["Tasks"]:
                if task["Driver"] == "raw_exec" and "work_dir" in (task.get("Config") or {}):
                    return (
                        "failed to parse config: Unsupported argument: An argument named "
                        '"work_dir" is not expected here.'
                    )
        return ""

    def _crash(self, alloc: FakeAlloc, *, event: tuple[str, str] | None = None) -> None:
        now = now_ns()
        alloc.doc["ClientStatus"] = "failed"
        alloc.doc["ClientDescription"] = "Failed tasks"
        alloc.doc["TaskStates"] = {
            name: {
                "State": "dead",
                "Failed": True,
                "Restarts": 3,
                "LastRestart": self.time(now),
                "StartedAt": self.time(now),
                "FinishedAt": self.time(now),
                "Events": (
                    [self.task_event(event[0], event[1], FailsTask=True)]
                    if event
                    else [
                        self.task_event("Started", "Task started by client"),
                        self.task_event("Terminated", "Exit Code: 1", ExitCode=1),
                        self.task_event(
                            "Not Restarting",
                            'Exceeded allowed attempts 3 in interval 5m0s and mode is "fail"',
                            FailsTask=True,
                        ),
                    ]
                ),
            }
            for name in alloc.doc["AllocatedResources"]["Tasks"]
        }
        if alloc.deployment_id:
            alloc.doc["DeploymentStatus"] = {
                "Healthy": False,
                "Timestamp": self.time(now),
                "Canary": alloc.canary,
                "ModifyIndex": self.index + 1,
            }
        self.touch(alloc)

    def _finish(self, alloc: FakeAlloc, description: str, *, killed: bool) -> None:
        now = now_ns()
        alloc.doc["ClientStatus"] = "complete"
        alloc.doc["ClientDescription"] = description
        for state in (alloc.doc["TaskStates"] or {}).values():
            state["State"] = "dead"
            state["FinishedAt"] = self.time(now)
            if killed:
                state["Events"] += [
                    self.task_event("Killing", "Sent interrupt. Waiting 10s before force killing"),
                    self.task_event("Terminated", "Exit Code: 0", ExitCode=0),
                    self.task_event("Killed", "Task successfully killed"),
                ]
            else:
                state["Events"].append(self.task_event("Terminated", "Exit Code: 0", ExitCode=0))
            state["Events"] = state["Events"][-10:]
        self.touch(alloc)

    def _progress_deployment(self, deployment: dict[str, Any]) -> bool:
        job = self.jobs.get((deployment["Namespace"], deployment["JobID"]))
        events: list[dict[str, Any]] = []
        if job is None or job.create_index != deployment["JobCreateIndex"]:
            index = self.bump()
            self._set_deployment(
                deployment, "cancelled", "Cancelled because job is stopped", index, events
            )
            self.emit(index, events)
            return True
        mine = [a for a in self.allocs.values() if a.deployment_id == deployment["ID"]]
        if any(alloc.healthy is False for alloc in mine):
            self._fail_deployment(job, deployment)
            return True
        if self._counted(deployment, mine):
            return True
        if self._auto_promote(job, deployment, mine):
            return True
        wanted = {
            (group["Name"], slot)
            for group in job.spec["TaskGroups"]
            for slot in range(group["Count"])
        }
        current = {
            (alloc.doc["TaskGroup"], alloc.slot)
            for alloc in self.incarnation_allocs(job)
            if alloc.occupies_slot() and alloc.version == job.version and alloc.healthy is True
        }
        outdated = [
            a
            for a in self.incarnation_allocs(job)
            if a.occupies_slot() and a.version != job.version
        ]
        index = self.index + 1
        if wanted <= current and not outdated:
            self.bump()
            self._set_deployment(
                deployment, "successful", "Deployment completed successfully", index, events
            )
            job.stable = True
            job.history[job.version] = (job.history[job.version][0], True)
            self.emit(index, events)
            return True
        events = self._roll(job, deployment, index)
        if not events:
            return False
        self.bump()
        self.emit(index, events)
        return True

    def _counted(self, deployment: dict[str, Any], mine: list[FakeAlloc]) -> bool:
        """Keep PlacedAllocs/HealthyAllocs/UnhealthyAllocs in step with the deployment's
        allocations, as the state store does with each allocation update
        (nomad/state/state_store.go, updateDeploymentWithAlloc); whether they changed."""
        changed = False
        for name, state in deployment["TaskGroups"].items():
            placed = [a for a in mine if a.doc["TaskGroup"] == name]
            counts = {
                "PlacedAllocs": len(placed),
                "HealthyAllocs": sum(a.healthy is True for a in placed),
                "UnhealthyAllocs": sum(a.healthy is False for a in placed),
            }
            if any(state[key] != value for key, value in counts.items()):
                state.update(counts)
                changed = True
        if changed:
            index = self.bump()
            deployment["ModifyIndex"] = index
            self.emit(index, [self.deployment_event(deployment)])
        return changed

    def _auto_promote(
        self, job: FakeJob, deployment: dict[str, Any], mine: list[FakeAlloc]
    ) -> bool:
        """nomad/deploymentwatcher/deployment_watcher.go, autoPromoteDeployment: once every
        group with canaries is AutoPromote and has all its desired canaries placed and
        healthy, the watcher promotes the whole deployment; then the rest is replaced."""
        groups = [g for g in deployment["TaskGroups"].values() if g["DesiredCanaries"] > 0]
        if not groups or all(g["Promoted"] for g in groups):
            return False
        healthy = {a.id for a in mine if a.healthy is True}
        for group in groups:
            placed = group["PlacedCanaries"]
            if not group["AutoPromote"] or len(placed) < group["DesiredCanaries"]:
                return False
            if sum(alloc_id in healthy for alloc_id in placed) != group["DesiredCanaries"]:
                return False
        index = self.bump()
        self.emit(index, self.promote_groups(deployment, None, index))
        self.schedule(job)
        return True

    def _fail_deployment(self, job: FakeJob, deployment: dict[str, Any]) -> None:
        index = self.bump()
        events: list[dict[str, Any]] = []
        description = "Failed due to unhealthy allocations"
        target = None
        if (job.update or {}).get("AutoRevert"):
            stable = [
                version
                for version, (spec, is_stable) in job.history.items()
                if is_stable and version != job.version
            ]
            if stable and footprint(job.history[max(stable)][0]) != footprint(job.spec):
                target = max(stable)
                description += f" - rolling back to job version {target}"
        self._set_deployment(deployment, "failed", description, index, events)
        events += self.stop_unpromoted_canaries(deployment, index)
        self.emit(index, events)
        if target is not None:
            self.upsert(job.namespace, copy.deepcopy(job.history[target][0]), job)
