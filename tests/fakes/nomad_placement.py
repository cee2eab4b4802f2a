"""The fake Nomad's scheduler: its reconcile (place, stop, replace allocations),
deployments and the events every change emits.

A base of FakeNomad; every method expects the caller to hold `self.lock`.
"""

from __future__ import annotations

import copy
from collections import deque
from typing import Any

from tests.fakes.nomad_objects import (
    ACTIVE_DEPLOYMENT,
    NODE_ID,
    NODE_NAME,
    ZERO_TIME,
    FakeAlloc,
    FakeError,
    FakeJob,
    Faults,
    new_id,
    now_ns,
    rfc3339,
)

__all__ = ["Placement", "footprint"]


class Placement:
    faults: Faults
    host_ip: str
    index: int
    jobs: dict[tuple[str, str], FakeJob]
    allocs: dict[str, FakeAlloc]
    deployments: dict[str, dict[str, Any]]
    frames: deque[dict[str, Any]]
    evicted: int
    next_port: int

    # -- bookkeeping ----------------------------------------------------------------------

    def bump(self) -> int:
        self.index += 1
        return self.index

    def emit(self, index: int, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        for event in events:
            event["Index"] = index
        if len(self.frames) == self.frames.maxlen:
            self.evicted = self.frames[0]["Index"]
        self.frames.append({"Index": index, "Events": events})

    def job_event(self, kind: str, doc: dict[str, Any]) -> dict[str, Any]:
        return {
            "Topic": "Job",
            "Type": kind,
            "Key": doc["ID"],
            "Namespace": doc["Namespace"],
            "FilterKeys": None,
            "Payload": {"Job": doc},
        }

    def alloc_event(self, kind: str, alloc: FakeAlloc) -> dict[str, Any]:
        doc = copy.deepcopy(alloc.doc)  # the embedded Job is never sent, as in Nomad
        return {
            "Topic": "Allocation",
            "Type": kind,
            "Key": alloc.id,
            "Namespace": doc["Namespace"],
            "FilterKeys": [doc["JobID"], doc.get("DeploymentID") or ""],
            "Payload": {"Allocation": doc},
        }

    def deployment_event(self, deployment: dict[str, Any]) -> dict[str, Any]:
        return {
            "Topic": "Deployment",
            "Type": "DeploymentStatusUpdate",
            "Key": deployment["ID"],
            "Namespace": deployment["Namespace"],
            "FilterKeys": [deployment["JobID"]],
            "Payload": {"Deployment": copy.deepcopy(deployment)},
        }

    def write_reply(self, job_modify_index: int) -> dict[str, Any]:
        return {
            "EvalID": new_id(),
            "EvalCreateIndex": self.index,
            "JobModifyIndex": job_modify_index,
            "Warnings": "",
            "Index": self.index,
            "LastIndex": self.index,  # the Go client's name for Index (from X-Nomad-Index)
            "LastContact": 0,
            "KnownLeader": True,
        }

    def task_event(self, kind: str, message: str, **extra: Any) -> dict[str, Any]:
        event = {
            "Type": kind,
            "Time": now_ns(),
            "DisplayMessage": message,
            "Message": "",
            "Details": {},
            "FailsTask": False,
            "ExitCode": 0,
            "Signal": 0,
            "DriverError": "",
            "KillReason": "",
        }
        event.update(extra)
        return event

    def time(self, ns: int) -> str:
        return rfc3339(ns)

    def job_status(self, job: FakeJob) -> str:
        allocs = self.incarnation_allocs(job)
        if any(alloc.client in ("pending", "running") for alloc in allocs):
            return "running"
        if job.stopped or (job.batch and allocs):
            return "dead"
        return "pending"

    def incarnation_allocs(self, job: FakeJob) -> list[FakeAlloc]:
        return [
            alloc
            for alloc in self.allocs.values()
            if alloc.doc["Namespace"] == job.namespace
            and alloc.doc["JobID"] == job.id
            and alloc.job_create_index == job.create_index
        ]

    def latest_deployment(self, job: FakeJob) -> dict[str, Any] | None:
        mine = [
            d
            for d in self.deployments.values()
            if d["Namespace"] == job.namespace
            and d["JobID"] == job.id
            and d["JobCreateIndex"] == job.create_index
        ]
        return max(mine, key=lambda d: d["CreateIndex"], default=None)

    # -- jobs -----------------------------------------------------------------------------

    def upsert(
        self,
        namespace: str,
        spec: dict[str, Any],
        existing: FakeJob | None,
        *,
        event: str = "JobRegistered",
    ) -> dict[str, Any]:
        index = self.bump()
        if existing is None:
            job = FakeJob(
                namespace=namespace,
                spec=spec,
                version=0,
                create_index=index,
                modify_index=index,
                job_modify_index=index,
                submit_time=now_ns(),
            )
            self.jobs[(namespace, job.id)] = job
        else:
            job = existing
            job.spec = spec
            job.version += 1
            job.modify_index = job.job_modify_index = index
            job.submit_time = now_ns()
            job.stable = False
        job.history[job.version] = (copy.deepcopy(spec), False)
        self.emit(index, [self.job_event(event, job.document(self.job_status(job)))])
        self.schedule(job)
        return self.write_reply(job.job_modify_index)

    def schedule(self, job: FakeJob) -> None:
        """Nomad's reconciler, simplified: make the allocations match the job."""
        index = self.bump()
        events: list[dict[str, Any]] = []
        allocs = self.incarnation_allocs(job)
        if job.stopped:
            for alloc in allocs:
                if alloc.desired == "run":
                    self._desire_stop(alloc, "alloc not needed due to job update", index)
                    events.append(self.alloc_event("PlanResult", alloc))
            self._cancel_deployment(job, "Cancelled because job is stopped", index, events)
            self.emit(index, events)
            return
        deployment = self.latest_deployment(job)
        if (
            deployment is not None
            and deployment["Status"] in ACTIVE_DEPLOYMENT
            and deployment["JobVersion"] != job.version
        ):
            # A deployment of an older version is cancelled whatever the new one needs
            # (scheduler/reconciler/reconcile_cluster.go, cancelUnneededDeployments).
            reason = "Cancelled due to newer version of job"
            self._cancel_deployment(job, reason, index, events)
        for group in job.spec["TaskGroups"]:
            # Canaries waiting for a promotion take no slot yet: the allocations they may
            # replace keep theirs (scheduler/reconciler: untainted.difference(canaries)).
            waiting = self.waiting_canaries(deployment, group["Name"])
            slots = self._slots([a for a in allocs if a.id not in waiting], group["Name"])
            for slot, alloc in slots.items():
                if slot >= group["Count"]:
                    self._desire_stop(alloc, "alloc not needed due to job update", index)
                    events.append(self.alloc_event("PlanResult", alloc))
            missing = [slot for slot in range(group["Count"]) if slot not in slots]
            destructive = []
            for slot, alloc in sorted(slots.items()):
                if slot >= group["Count"] or alloc.version == job.version:
                    continue
                if footprint(job.history[alloc.version][0]) == footprint(job.spec):
                    alloc.version = job.version  # a count-only change updates in place
                    self._modified(alloc, index)
                    events.append(self.alloc_event("PlanResult", alloc))
                else:
                    destructive.append(alloc)
            stale = deployment is None or (
                deployment["JobVersion"] != job.version
                or deployment["Status"] not in ACTIVE_DEPLOYMENT
            )
            created = False
            if job.update is not None and (missing or destructive) and stale:
                reason = "Cancelled due to newer version of job"
                self._cancel_deployment(job, reason, index, events)
                deployment = self._new_deployment(job, index, events)
                created = True
            live = deployment if deployment and deployment["Status"] in ACTIVE_DEPLOYMENT else None
            if live is not None and job.update is not None:
                events += self._place_canaries(job, group, live, destructive, index)
                if created:
                    self._describe_promotion(live)
            for slot in missing:
                placed = self.place(job, group, slot, index, deployment=live)
                events.append(self.alloc_event("PlanResult", placed))
            if job.update is None:
                for alloc in destructive:
                    events += self._replace(job, group, alloc, index, deployment=None)
        if deployment is not None and deployment["Status"] in ACTIVE_DEPLOYMENT:
            events += self._roll(job, deployment, index)
        self.emit(index, events)

    def place(
        self,
        job: FakeJob,
        group: dict[str, Any],
        slot: int,
        index: int,
        *,
        deployment: dict[str, Any] | None,
        previous: str = "",
        canary: bool = False,
    ) -> FakeAlloc:
        task = group["Tasks"][0]
        ports = []
        for network in group.get("Networks") or ():
            for port in network.get("DynamicPorts") or ():
                self.next_port += 1
                ports.append(
                    {
                        "Label": port["Label"],
                        "Value": self.next_port,
                        "To": port.get("To", 0),
                        "HostIP": self.host_ip,
                    }
                )
        now = now_ns()
        doc: dict[str, Any] = {
            "ID": new_id(),
            "EvalID": new_id(),
            "Name": f"{job.id}.{group['Name']}[{slot}]",
            "Namespace": job.namespace,
            "NodeID": NODE_ID,
            "NodeName": NODE_NAME,
            "JobID": job.id,
            "TaskGroup": group["Name"],
            "DesiredStatus": "run",
            "DesiredDescription": "",
            "DesiredTransition": {"Migrate": None, "Reschedule": None, "ForceReschedule": None},
            "ClientStatus": "pending",
            "ClientDescription": "No tasks have started",
            "TaskStates": None,  # the client fills these in when it picks the alloc up
            "DeploymentID": deployment["ID"] if deployment else "",
            "DeploymentStatus": (
                {"Healthy": None, "Timestamp": ZERO_TIME, "Canary": canary, "ModifyIndex": 0}
                if deployment
                else None
            ),
            "AllocatedResources": {
                "Tasks": {
                    t["Name"]: {
                        "Cpu": {"CpuShares": t["Resources"]["CPU"]},
                        "Memory": {"MemoryMB": t["Resources"]["MemoryMB"]},
                    }
                    for t in group["Tasks"]
                },
                "Shared": {
                    "DiskMB": 300,
                    "Networks": (
                        [
                            {
                                "Mode": "host",
                                "Device": "eth0",
                                "IP": self.host_ip,
                                "DynamicPorts": [
                                    {"Label": p["Label"], "Value": p["Value"], "To": p["To"]}
                                    for p in ports
                                ],
                            }
                        ]
                        if ports
                        else None
                    ),
                    "Ports": ports or None,
                },
            },
            "PreviousAllocation": previous,
            "NextAllocation": "",
            "FollowupEvalID": "",
            "RescheduleTracker": None,
            "CreateIndex": index,
            "ModifyIndex": index,
            "AllocModifyIndex": index,
            "CreateTime": now,
            "ModifyTime": now,
        }
        config = task.get("Config") or {}
        alloc = FakeAlloc(
            doc=doc,
            job_create_index=job.create_index,
            version=job.version,
            slot=slot,
            batch=job.batch,
            image=str(config.get("image") or config.get("command") or ""),
        )
        self.allocs[alloc.id] = alloc
        return alloc

    def force_reschedule(self, job: FakeJob) -> None:
        index = self.bump()
        events = []
        groups = {group["Name"]: group for group in job.spec["TaskGroups"]}
        for alloc in self.incarnation_allocs(job):
            group = groups.get(alloc.doc["TaskGroup"])
            if (
                group is None
                or alloc.desired != "run"
                or alloc.client != "failed"
                or alloc.doc["NextAllocation"]
                or alloc.slot >= group["Count"]
            ):
                continue
            placed = self.place(job, group, alloc.slot, index, deployment=None, previous=alloc.id)
            alloc.doc["NextAllocation"] = placed.id
            self._modified(alloc, index)
            events += [
                self.alloc_event("PlanResult", alloc),
                self.alloc_event("PlanResult", placed),
            ]
        self.emit(index, events)

    def stop_job_allocs(self, job: FakeJob, reason: str) -> None:
        index = self.bump()
        events: list[dict[str, Any]] = []
        for alloc in self.incarnation_allocs(job):
            if alloc.desired == "run":
                self._desire_stop(alloc, reason, index)
                events.append(self.alloc_event("PlanResult", alloc))
        self._cancel_deployment(job, "Cancelled because job is stopped", index, events)
        self.emit(index, events)

    def touch(self, alloc: FakeAlloc) -> None:
        """Record a client-side change of `alloc` (a new index and an event)."""
        index = self.bump()
        alloc.doc["ModifyIndex"] = index
        alloc.doc["ModifyTime"] = now_ns()
        self.emit(index, [self.alloc_event("AllocationUpdated", alloc)])

    # -- deployments ----------------------------------------------------------------------

    def _new_deployment(
        self, job: FakeJob, index: int, events: list[dict[str, Any]]
    ) -> dict[str, Any]:
        update = job.update or {}
        deployment = {
            "ID": new_id(),
            "Namespace": job.namespace,
            "JobID": job.id,
            "JobVersion": job.version,
            "JobModifyIndex": job.job_modify_index,
            "JobSpecModifyIndex": job.job_modify_index,
            "JobCreateIndex": job.create_index,
            "IsMultiregion": False,
            "Status": "running",
            "StatusDescription": "Deployment is running",
            "TaskGroups": {
                group["Name"]: {
                    "AutoRevert": bool(update.get("AutoRevert")),
                    "AutoPromote": bool(update.get("AutoPromote")),
                    "ProgressDeadline": update.get("ProgressDeadline", 0),
                    "RequireProgressBy": ZERO_TIME,
                    "Promoted": False,
                    "PlacedCanaries": [],
                    "DesiredCanaries": 0,
                    "DesiredTotal": group["Count"],
                    "PlacedAllocs": 0,
                    "HealthyAllocs": 0,
                    "UnhealthyAllocs": 0,
                }
                for group in job.spec["TaskGroups"]
            },
            "CreateIndex": index,
            "ModifyIndex": index,
        }
        self.deployments[deployment["ID"]] = deployment
        events.append(self.deployment_event(deployment))
        return deployment

    def _cancel_deployment(
        self, job: FakeJob, reason: str, index: int, events: list[dict[str, Any]]
    ) -> None:
        deployment = self.latest_deployment(job)
        if deployment is not None and deployment["Status"] in ACTIVE_DEPLOYMENT:
            self._set_deployment(deployment, "cancelled", reason, index, events)
            events += self.stop_unpromoted_canaries(deployment, index)

    def _set_deployment(
        self,
        deployment: dict[str, Any],
        status: str,
        description: str,
        index: int,
        events: list[dict[str, Any]],
    ) -> None:
        deployment["Status"] = status
        deployment["StatusDescription"] = description
        deployment["ModifyIndex"] = index
        mine = [a for a in self.allocs.values() if a.deployment_id == deployment["ID"]]
        for name, group in deployment["TaskGroups"].items():
            placed = [a for a in mine if a.doc["TaskGroup"] == name]
            group["PlacedAllocs"] = len(placed)
            group["HealthyAllocs"] = sum(a.healthy is True for a in placed)
            group["UnhealthyAllocs"] = sum(a.healthy is False for a in placed)
        events.append(self.deployment_event(deployment))

    def _roll(self, job: FakeJob, deployment: dict[str, Any], index: int) -> list[dict[str, Any]]:
        """Replace outdated allocations, at most MaxParallel not yet healthy at a time."""
        update = job.update
        if update is None:
            return []
        in_flight = [
            a
            for a in self.allocs.values()
            if a.deployment_id == deployment["ID"]
            and a.desired == "run"
            and a.client in ("pending", "running")
            and a.healthy is None
        ]
        budget = int(update["MaxParallel"]) - len(in_flight)
        groups = {group["Name"]: group for group in job.spec["TaskGroups"]}
        canarying = {name for name in groups if self.canarying(deployment, name)}
        events = self._stop_replaced_by_canaries(job, deployment, canarying, index)
        outdated = sorted(
            (
                a
                for a in self.incarnation_allocs(job)
                if a.occupies_slot()
                and a.version != job.version
                and a.doc["TaskGroup"] not in canarying
                and a.slot < groups[a.doc["TaskGroup"]]["Count"]
            ),
            key=lambda a: (a.doc["TaskGroup"], a.slot),
        )
        for alloc in outdated[: max(budget, 0)]:
            group = groups[alloc.doc["TaskGroup"]]
            events += self._replace(job, group, alloc, index, deployment=deployment)
        return events

    def _replace(
        self,
        job: FakeJob,
        group: dict[str, Any],
        alloc: FakeAlloc,
        index: int,
        *,
        deployment: dict[str, Any] | None,
    ) -> list[dict[str, Any]]:
        self._desire_stop(alloc, "alloc is being updated due to job update", index)
        placed = self.place(job, group, alloc.slot, index, deployment=deployment, previous=alloc.id)
        alloc.doc["NextAllocation"] = placed.id
        return [self.alloc_event("PlanResult", alloc), self.alloc_event("PlanResult", placed)]

    # -- canaries -------------------------------------------------------------------------

    def canarying(self, deployment: dict[str, Any] | None, group: str) -> bool:
        """Whether the group's canaries wait for a promotion (scheduler/reconciler:
        isCanarying = DesiredCanaries != 0 && !Promoted): nothing else is replaced."""
        if deployment is None or deployment["Status"] not in ACTIVE_DEPLOYMENT:
            return False
        state = deployment["TaskGroups"].get(group) or {}
        return bool(state.get("DesiredCanaries")) and not state.get("Promoted")

    def waiting_canaries(self, deployment: dict[str, Any] | None, group: str) -> set[str]:
        if not self.canarying(deployment, group):
            return set()
        assert deployment is not None
        return set(deployment["TaskGroups"][group]["PlacedCanaries"])

    def _place_canaries(
        self,
        job: FakeJob,
        group: dict[str, Any],
        deployment: dict[str, Any],
        destructive: list[FakeAlloc],
        index: int,
    ) -> list[dict[str, Any]]:
        """Nomad's requiresCanaries and computeCanaries (scheduler/reconciler/
        reconcile_cluster.go): with allocations to replace destructively and fewer canaries
        than Update.Canary, not yet promoted, place the missing canaries beside the old
        allocations. Their names reuse the indexes of the allocations being replaced first
        (reconcile_util.go, NextCanaries), so a canary and an old allocation share one."""
        update = job.update or {}
        wanted = int(update.get("Canary") or 0)
        state = deployment["TaskGroups"][group["Name"]]
        placed = [
            self.allocs[alloc_id]
            for alloc_id in state["PlacedCanaries"]
            if alloc_id in self.allocs and self.allocs[alloc_id].desired == "run"
        ]
        if not destructive or len(placed) >= wanted or state["Promoted"]:
            return []
        state["DesiredCanaries"] = wanted
        taken = {alloc.slot for alloc in placed}
        order = [a.slot for a in sorted(destructive, key=lambda a: a.slot)]
        order += [slot for slot in range(group["Count"]) if slot not in order]
        order += list(range(wanted))  # more canaries than slots: overlapping names
        slots = [slot for slot in dict.fromkeys(order) if slot not in taken]
        events = []
        for slot in slots[: wanted - len(placed)]:
            canary = self.place(job, group, slot, index, deployment=deployment, canary=True)
            state["PlacedCanaries"].append(canary.id)
            events.append(self.alloc_event("PlanResult", canary))
        return events

    def _describe_promotion(self, deployment: dict[str, Any]) -> None:
        """A created deployment that needs a promotion says so (reconcile_cluster.go, with
        Deployment.RequiresPromotion and HasAutoPromote of nomad/structs/deployment.go)."""
        groups = [g for g in deployment["TaskGroups"].values() if g["DesiredCanaries"] > 0]
        if not any(not g["Promoted"] for g in groups):
            return
        if all(g["AutoPromote"] for g in groups):
            deployment["StatusDescription"] = "Deployment is running pending automatic promotion"
        else:
            deployment["StatusDescription"] = "Deployment is running but requires manual promotion"

    def stop_unpromoted_canaries(
        self, deployment: dict[str, Any], index: int
    ) -> list[dict[str, Any]]:
        """Canaries of a deployment that failed or was cancelled without a promotion stop
        (reconcile_cluster.go, cancelUnneededCanaries)."""
        events = []
        for state in deployment["TaskGroups"].values():
            if state["Promoted"]:
                continue
            for alloc_id in state["PlacedCanaries"]:
                alloc = self.allocs.get(alloc_id)
                if alloc is not None and alloc.desired == "run":
                    self._desire_stop(alloc, "alloc not needed due to job update", index)
                    events.append(self.alloc_event("PlanResult", alloc))
        return events

    def promote_groups(
        self, deployment: dict[str, Any], groups: list[str] | None, index: int
    ) -> list[dict[str, Any]]:
        """Nomad's UpdateDeploymentPromotion (nomad/state/state_store.go): every group asked
        for (all with None) must have as many healthy, running canaries as it desires, else
        a go-multierror of `Task group "<g>" has <n>/<m> healthy allocations`; then the
        groups are Promoted and a deployment that needs no more promotion is described as
        running again. Raises FakeError(500) as the agent answers that uncoded error."""
        chosen = [name for name in deployment["TaskGroups"] if groups is None or name in groups]
        problems = []
        for name in chosen:
            state = deployment["TaskGroups"][name]
            need = state["DesiredCanaries"]
            if need == 0:
                continue
            have = sum(
                1
                for alloc_id in state["PlacedCanaries"]
                if (alloc := self.allocs.get(alloc_id)) is not None
                and alloc.client in ("pending", "running")
                and alloc.desired == "run"
                and alloc.healthy is True
            )
            if have < need:
                problems.append(f'Task group "{name}" has {have}/{need} healthy allocations')
        if problems:
            points = "\n\t* ".join(problems)
            count = f"{len(problems)} error{'s' if len(problems) > 1 else ''} occurred"
            raise FakeError(500, f"{count}:\n\t* {points}\n\n")
        for name in chosen:
            deployment["TaskGroups"][name]["Promoted"] = True
        still = any(
            g["DesiredCanaries"] > 0 and not g["Promoted"]
            for g in deployment["TaskGroups"].values()
        )
        if not still and deployment["Status"] == "running":
            deployment["StatusDescription"] = "Deployment is running"
        deployment["ModifyIndex"] = index
        event = self.deployment_event(deployment)
        event["Type"] = "DeploymentPromotion"  # nomad/state/events.go, for this request type
        return [event]

    def _stop_replaced_by_canaries(
        self, job: FakeJob, deployment: dict[str, Any], canarying: set[str], index: int
    ) -> list[dict[str, Any]]:
        """Once promoted, an old allocation whose name a canary took stops without a
        replacement: the canary is its replacement (reconcile_cluster.go, computeStop:
        "Prefer stopping any alloc that has the same name as the canaries")."""
        events: list[dict[str, Any]] = []
        promoted = {
            alloc_id
            for name, state in deployment["TaskGroups"].items()
            if name not in canarying and state["Promoted"]
            for alloc_id in state["PlacedCanaries"]
        }
        names = {
            (a.doc["TaskGroup"], a.slot)
            for a in self.incarnation_allocs(job)
            if a.id in promoted and a.occupies_slot()
        }
        for alloc in self.incarnation_allocs(job):
            key = (alloc.doc["TaskGroup"], alloc.slot)
            if key in names and alloc.id not in promoted and alloc.occupies_slot():
                self._desire_stop(alloc, "alloc not needed due to job update", index)
                events.append(self.alloc_event("PlanResult", alloc))
        return events

    # -- small helpers --------------------------------------------------------------------

    def _slots(self, allocs: list[FakeAlloc], group: str) -> dict[int, FakeAlloc]:
        slots: dict[int, FakeAlloc] = {}
        for alloc in sorted(allocs, key=lambda a: a.doc["CreateIndex"]):
            if alloc.doc["TaskGroup"] == group and alloc.occupies_slot():
                slots[alloc.slot] = alloc
        return slots

    def _desire_stop(self, alloc: FakeAlloc, description: str, index: int) -> None:
        alloc.doc["DesiredStatus"] = "stop"
        alloc.doc["DesiredDescription"] = description
        self._modified(alloc, index)

    def _modified(self, alloc: FakeAlloc, index: int) -> None:
        alloc.doc["ModifyIndex"] = alloc.doc["AllocModifyIndex"] = index
        alloc.doc["ModifyTime"] = now_ns()


def footprint(spec: dict[str, Any]) -> dict[str, Any]:
    """What makes allocations differ: the spec without counts, the stop flag and the update
    strategy (scheduler/util.go, tasksUpdated, compares the groups' tasks, networks and
    services, not how they roll out: a changed Update block updates allocations in place)."""
    footprint = copy.deepcopy(spec)
    footprint.pop("Stop", None)
    footprint.pop("Update", None)
    for group in footprint["TaskGroups"]:
        group["Count"] = 0
    return footprint
