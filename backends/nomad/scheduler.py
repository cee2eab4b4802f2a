"""The Nomad backend: one Nomad job per proc, driven through Nomad's HTTP API.

Instance control. Nomad keeps `Count` allocations per group and has no way to keep one
of them stopped, so:

| action  | all instances (None)                          | one instance (n)                      |
|---------|-----------------------------------------------|---------------------------------------|
| STOP    | stop the job (kept, `Stop: true`, count kept) | refused (SchedulerRejected)           |
| START   | stopped job: register it again, running;      | running/pending: nothing to do;       |
|         | else force-reschedule failed instances        | failed: force-reschedule; stopped job |
|         |                                               | refused                               |
| RESTART | restart every running instance in place, one  | running: restart in place; else as    |
|         | after the other; stopped job: as START        | START                                 |

A stopped job keeps its count, so `state()` still reports `num_instances` with the
instances EXITED, as LAIN showed stopped containers. `apply()` always leaves the job
running: a deploy brings a stopped proc back.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from enum import StrEnum
from typing import Any

import anyio
import httpx

from backends.errors import JobNotFound, SchedulerConflict, SchedulerError, SchedulerRejected
from backends.feed import EventFeed
from backends.logs import LogArchive, LogItem, LogLine, LogPosition, LogStream
from backends.nomad.allocs import JobView, check_verdict, deployment_canary, is_live
from backends.nomad.client import NomadClient
from backends.nomad.events import EventStream
from backends.nomad.jobs import DEFAULT_CPU_MHZ_PER_UNIT, DRIVERS, render_job
from backends.nomad.logs import NomadLogs
from backends.nomad.options import JobOptions
from backends.nomad.reads import JobRead, read_jobs
from backends.nomad.settings import NomadSettings
from backends.nomad.tracker import Tracker
from backends.types import (
    BackendHealth,
    InstanceAction,
    InstanceState,
    InstanceStatus,
    ProcJob,
    ProcState,
    SchedulerEvent,
    split_job_id,
)

__all__ = ["NomadScheduler"]

logger = logging.getLogger(__name__)

# A check-and-set write that finds the job changed is read again and tried once more.
_WRITE_ATTEMPTS = 2


class _Lifecycle(StrEnum):
    UNOPENED = "unopened"  # calls work; no event stream yet
    OPENED = "opened"  # inside `async with`: the event stream runs
    CLOSED = "closed"  # left: every call is refused


class NomadScheduler:
    """A `backends.base.Scheduler` backed by Nomad.

    Args:
        settings: where Nomad is and how to authenticate (see `NomadSettings`).
        cpu_mhz_per_unit: MHz Nomad reserves per LAIN cpu level (default 250; level 0
            counts as 2, the most is 8, as deployd did).
        default_driver: the task driver for a ProcJob whose `driver` is empty.
        max_threads: python-nomad calls running at once, in this scheduler's own threads.
        timeout: seconds for each Nomad request (connect and read).
        heartbeat_timeout: seconds of silence on the event stream before reconnecting;
            must exceed Nomad's 30 s heartbeat.
        reconnect_backoff: first and longest wait between event stream attempts.
        history: events the feed keeps for `events(after=...)`.
        log_archive: where the output of allocations that end is kept (see `logs`).
        log_follow_buffer: lines queued for one log follower before it loses lines.
        restart_poll: seconds between looks at a restarted instance before the next one
            of a restart-all is restarted.
        health_interval: seconds between reads of the running instances' check results
            (while open), so the events' `healthy` follows them.
        options: how rendered jobs roll out, are placed, keep data, are routed and pull
            their images (see `JobOptions`).

    Events (while open) cover every lain-console job of the namespace: PROC with the
    whole ProcState when a job's count, spec, stop state or deployment error changes,
    INSTANCE with the new snapshot when an instance changes (and a last EXITED one when a
    scale-down removes it), PROC_REMOVED when the job is purged. The first reconcile
    publishes what already runs; replays and reconnects publish only real changes.
    An instance's `healthy` is the live result of its Nomad-native checks (read by
    `state()`, and every `health_interval` for events), else what its deployment judged.
    """

    canary_deploys = True  # ProcJob.canary becomes Update.Canary; see `promote`

    def __init__(
        self,
        settings: NomadSettings,
        *,
        cpu_mhz_per_unit: int = DEFAULT_CPU_MHZ_PER_UNIT,
        default_driver: str = "docker",
        max_threads: int = 8,
        timeout: float = 10.0,
        heartbeat_timeout: float = 45.0,
        reconnect_backoff: tuple[float, float] = (0.5, 30.0),
        history: int = 10_000,
        log_archive: LogArchive | None = None,
        log_follow_buffer: int = 10_000,
        restart_poll: float = 1.0,
        health_interval: float = 10.0,
        options: JobOptions | None = None,
    ) -> None:
        if cpu_mhz_per_unit < 1:
            raise ValueError("cpu_mhz_per_unit must be at least 1")
        if default_driver not in DRIVERS:
            raise ValueError(f"default_driver must be one of {', '.join(DRIVERS)}")
        self._settings = settings
        self._cpu_mhz_per_unit = cpu_mhz_per_unit
        self._default_driver = default_driver
        self._timeout = timeout
        self._heartbeat_timeout = heartbeat_timeout
        self._backoff = reconnect_backoff
        self._restart_poll = restart_poll
        self._health_interval = health_interval
        self._options = options or JobOptions()
        self._health_watch: asyncio.Task[None] | None = None
        self._client = NomadClient(settings, max_threads=max_threads, timeout=timeout)
        self._feed = EventFeed(history=history)
        self._tracker = Tracker(self._feed)
        self._stream: EventStream | None = None
        self._runner: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None
        self._lifecycle = _Lifecycle.UNOPENED
        params = {"namespace": settings.namespace}
        if settings.region:
            params["region"] = settings.region
        self._logs = NomadLogs(
            http=lambda: self._http,
            params=params,
            task_of=self._task_of,
            instances=self._current_instances,
            events=self._feed.subscribe,
            archive=log_archive,
            follow_buffer=log_follow_buffer,
        )
        self._archiver: asyncio.Task[None] | None = None
        # How `states()` answered: from the event stream, or by asking Nomad.
        self.reads_from_events = 0
        self.reads_from_nomad = 0

    @property
    def event_stream(self) -> EventStream | None:
        """The event stream follower while the scheduler is open (for health and tests)."""
        return self._stream

    async def __aenter__(self) -> NomadScheduler:
        if self._lifecycle is not _Lifecycle.UNOPENED:
            raise RuntimeError(f"NomadScheduler cannot be opened again (it is {self._lifecycle})")
        self._http = _http_client(self._settings, self._timeout)
        self._stream = EventStream(
            self._client,
            self._http,
            self._tracker,
            namespace=self._settings.namespace,
            region=self._settings.region,
            timeout=self._timeout,
            heartbeat_timeout=self._heartbeat_timeout,
            backoff=self._backoff,
        )
        # A plain task rather than a task group: entering and leaving may happen in
        # different tasks (an app's lifespan, a test fixture), which a cancel scope forbids.
        self._runner = asyncio.create_task(self._stream.run(), name="nomad-event-stream")
        self._runner.add_done_callback(_report_crash)
        self._archiver = asyncio.create_task(self._logs.run_archiver(), name="nomad-log-archiver")
        self._health_watch = asyncio.create_task(self._watch_health(), name="nomad-health")
        self._health_watch.add_done_callback(_report_crash)
        self._lifecycle = _Lifecycle.OPENED
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._lifecycle = _Lifecycle.CLOSED
        try:
            await self._logs.close()
            tasks = [
                task
                for task in (self._runner, self._archiver, self._health_watch)
                if task is not None
            ]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks)
            if self._http is not None:
                await self._http.aclose()
        finally:
            self._runner = self._archiver = self._http = self._stream = None
            self._health_watch = None
            self._feed.close()
            self._client.close()

    def _check_usable(self) -> None:
        if self._lifecycle is _Lifecycle.CLOSED:
            raise RuntimeError("NomadScheduler is closed")

    # -- commands -----------------------------------------------------------------------

    async def apply(self, job: ProcJob) -> None:
        """Register the proc's job with exactly `job.num_instances` instances (no
        PreserveCounts: the caller's count is the desired one).

        Check-and-set against the job as just read (or "create only" when there is none),
        so a write by someone else in between is never overwritten unseen: on such a clash
        the job is read again and the write tried once more; a second clash raises
        SchedulerConflict. Raises SchedulerRejected for a job Nomad refuses,
        SchedulerUnavailable."""
        self._check_usable()
        rendered = self._render(job)
        for attempt in range(_WRITE_ATTEMPTS):
            current = await self._client.read_job(job.job_id)
            index = int(current.get("JobModifyIndex") or 0) if current is not None else 0
            try:
                await self._client.register(rendered, enforce_index=index)
                return
            except SchedulerConflict:
                if attempt + 1 == _WRITE_ATTEMPTS:
                    raise

    async def promote(self, job_id: str) -> None:
        """Promote the canaries of the job's deployment under way, as `nomad deployment
        promote` does: Nomad then replaces the other instances, MaxParallel at a time.

        Nomad itself accepts promoting a deployment without canaries (it only marks it
        promoted), so that is refused here first, with the reason. Raises JobNotFound;
        SchedulerConflict when no deployment with canaries awaits a promotion or its
        canaries are not all healthy yet; SchedulerUnavailable."""
        self._check_usable()
        read = await self._read_one(job_id)
        canary = deployment_canary(read.deployments)
        if canary is None:
            raise SchedulerConflict(
                f"{job_id} has no rollout with canaries under way; nothing to promote"
            )
        if canary.promoted:
            raise SchedulerConflict(
                f"the canaries of {job_id} are promoted already; its other instances are "
                "being replaced"
            )
        latest = max(read.deployments, key=lambda d: int(d.get("CreateIndex") or 0))
        await self._client.promote_deployment(str(latest["ID"]), job_id=job_id)

    async def scale(self, job_id: str, num_instances: int) -> None:
        """Set the count through Nomad's scale endpoint. Raises JobNotFound, and
        SchedulerConflict while a deployment of the job is running."""
        self._check_usable()
        if num_instances < 0:
            raise SchedulerRejected(f"{job_id}: num_instances must be >= 0")
        await self._client.scale(job_id, _group(job_id), num_instances)

    async def resize(self, job_id: str, *, cpu: int, memory_bytes: int) -> None:
        """Re-register the job from its stored spec with new resources (a rolling,
        health-checked replacement). The count and a stopped state are kept; the write is
        refused with SchedulerConflict if the job changed since it was read."""
        self._check_usable()
        if cpu < 0:
            raise SchedulerRejected(f"{job_id}: cpu must be >= 0")
        job = await self._client.read_job(job_id)
        if job is None:
            raise JobNotFound(job_id)
        view = JobView.from_job(job)
        spec = _spec(view).with_resources(cpu=cpu, memory_bytes=memory_bytes)
        await self._client.register(
            self._render(spec, stopped=view.stopped),
            enforce_index=int(job.get("JobModifyIndex") or 0),
            preserve_counts=True,
        )

    async def remove(self, job_id: str) -> None:
        """Stop and purge the job; nothing to do when Nomad has no such job."""
        self._check_usable()
        await self._client.stop(job_id, purge=True)

    async def control(
        self, job_id: str, action: InstanceAction, instance: int | None = None
    ) -> None:
        """Start, stop or restart instances as the module's table says. Raises
        JobNotFound, SchedulerRejected (an instance that does not exist, a single-instance
        stop), SchedulerUnavailable."""
        self._check_usable()
        if instance is not None and instance < 1:
            raise SchedulerRejected(f"{job_id}: instances are numbered from 1, got {instance}")
        if action is InstanceAction.STOP and instance is not None:
            raise SchedulerRejected(
                f"Nomad cannot keep one instance of {job_id} stopped (it always runs the "
                "job's count); stop all of its instances or scale it down instead"
            )
        read = await self._read_one(job_id)
        if action is InstanceAction.STOP:
            if not read.view.stopped:
                await self._client.stop(job_id, purge=False)
            return
        if read.view.stopped:
            if instance is not None:
                raise SchedulerRejected(
                    f"{job_id} is stopped; start all of its instances, not instance {instance}"
                )
            await self._start(read)
            return
        targets = [
            found
            for found in read.proc_state().instances
            if instance is None or found.number == instance
        ]
        if instance is not None and not targets:
            raise SchedulerRejected(f"{job_id} has no instance {instance}")
        if action is InstanceAction.RESTART:
            # A restart's answer has no index: reads wait for the stream to move past now.
            if self._stream is not None:
                self._client.wrote_past(self._stream.last_index or 0)
            running = [target for target in targets if target.status is InstanceStatus.RUNNING]
            for position, target in enumerate(running):
                await self._client.restart_allocation(
                    target.instance_id,
                    read.view.task,
                    what=f"restart instance {target.number} of {job_id}",
                    kill_timeout=read.view.kill_timeout,
                )
                if position + 1 < len(running):
                    # As `nomad job restart` does: the next one only once this one is
                    # back, so a restart never takes down more than one instance.
                    await self._wait_back(read.view, target)
        if any(target.status is InstanceStatus.FAILED for target in targets):
            await self._client.force_reschedule(job_id)

    # -- reads --------------------------------------------------------------------------

    async def state(self, job_id: str) -> ProcState:
        """The job's state; `exists` is False when Nomad has no such job."""
        return (await self.states([job_id]))[job_id]

    async def states(self, job_ids: Sequence[str]) -> dict[str, ProcState]:
        """Many jobs at once. While the event stream is in step (connected, reconciled and
        past our own last write) the answer is what it holds: no call to Nomad at all.
        Otherwise job reads in parallel, then one filtered list each of allocations and
        deployments."""
        self._check_usable()
        if self.in_step:
            self.reads_from_events += 1
            return {job_id: self._tracker.state(job_id) for job_id in job_ids}
        self.reads_from_nomad += 1
        snapshot = await read_jobs(self._client, job_ids)
        reads = [read for read in snapshot.jobs.values() if read is not None]
        checks = await self._checks(reads)
        return {
            job_id: (
                read.proc_state(checks=checks, releases=self._tracker.releases(job_id))
                if read
                else ProcState.missing(job_id)
            )
            for job_id, read in snapshot.jobs.items()
        }

    @property
    def in_step(self) -> bool:
        """Whether the event stream holds Nomad's state as of our own last write."""
        stream = self._stream
        return (
            stream is not None
            and stream.connected
            and stream.reconciles > 0
            and (stream.last_index or 0) >= self._client.write_index
        )

    async def health(self) -> BackendHealth:
        """Whether Nomad has a leader we can reach; never raises."""
        try:
            leader = await self._client.leader()
        except SchedulerError as exc:
            return BackendHealth(ok=False, detail=str(exc))
        where = f"Nomad at {self._settings.address}"
        if not leader:
            return BackendHealth(ok=False, detail=f"{where} has no cluster leader")
        detail = f"{where}, leader {leader}"
        stream = self._stream
        if stream is not None and not stream.connected:
            detail += f"; event stream reconnecting ({stream.last_failure or 'starting'})"
        return BackendHealth(ok=True, detail=detail)

    @property
    def state_version(self) -> int | None:
        """The tracker publishes every change it takes in; out of step, `states` reads Nomad
        itself, whose answers no counter of ours follows."""
        return self._feed.cursor if self.in_step else None

    def events(self, after: int | None = None) -> AsyncIterator[SchedulerEvent]:
        """Instance and proc changes seen on Nomad's event stream, in cursor order."""
        return self._feed.subscribe(after)

    async def log_tail(
        self,
        job_id: str,
        *,
        instance: int | None = None,
        lines: int = 100,
        stream: LogStream | None = None,
    ) -> list[LogLine]:
        """From Nomad's fs/logs, and from the archive for allocations that ended."""
        self._check_usable()
        return await self._logs.tail(job_id, instance=instance, lines=lines, stream=stream)

    def log_follow(
        self,
        job_id: str,
        *,
        instance: int | None = None,
        tail: int = 0,
        after: LogPosition | None = None,
    ) -> AsyncIterator[list[LogItem]]:
        """One fs/logs reader per allocation and stream, whatever the followers."""
        self._check_usable()
        return self._logs.follow(job_id, instance=instance, tail=tail, after=after)

    # -- helpers ------------------------------------------------------------------------

    async def _task_of(self, job_id: str) -> str | None:
        view = self._tracker.view(job_id)
        if view is None:
            job = await self._client.read_job(job_id)
            if job is None:
                return None
            view = JobView.from_job(job)
        return view.task

    async def _current_instances(self, job_id: str) -> tuple[InstanceState, ...]:
        return (await self.state(job_id)).instances

    def _render(self, job: ProcJob, *, stopped: bool = False) -> dict[str, Any]:
        return render_job(
            job,
            namespace=self._settings.namespace,
            cpu_mhz_per_unit=self._cpu_mhz_per_unit,
            region=self._settings.region,
            stopped=stopped,
            default_driver=self._default_driver,
            options=self._options,
        )

    async def _read_one(self, job_id: str) -> JobRead:
        read = (await read_jobs(self._client, [job_id])).jobs[job_id]
        if read is None:
            raise JobNotFound(job_id)
        return read

    async def _start(self, read: JobRead) -> None:
        # Nomad's `job start`: the same job registered again without Stop.
        await self._client.register(
            self._render(_spec(read.view)),
            enforce_index=int(read.job.get("JobModifyIndex") or 0),
            preserve_counts=True,
        )

    async def _wait_back(self, view: JobView, target: InstanceState) -> None:
        """Wait until a restarted instance runs again and, with a check, passes it.

        Raises SchedulerConflict when it stops instead or is not back within the job's
        healthy deadline: the instances after it are then left alone.
        """
        what = f"instance {target.number} of {view.job_id}"
        deadline = anyio.current_time() + view.healthy_deadline
        while True:
            alloc = await self._client.read_allocation(
                target.instance_id, what=f"read {what} after its restart"
            )
            status = alloc.get("ClientStatus")
            if status in ("complete", "failed", "lost"):
                raise SchedulerConflict(
                    f"{what} stopped after its restart ({status}: "
                    f"{alloc.get('ClientDescription') or 'no reason given'}); the instances "
                    "after it were not restarted"
                )
            if status == "running" and (not view.has_check or await self._passes(target)):
                return
            if anyio.current_time() > deadline:
                raise SchedulerConflict(
                    f"{what} was not running and healthy {view.healthy_deadline:g}s after "
                    "its restart; the instances after it were not restarted"
                )
            await anyio.sleep(self._restart_poll)

    async def _passes(self, target: InstanceState) -> bool:
        return bool(check_verdict(await self._client.allocation_checks(target.instance_id)))

    async def _checks(self, reads: list[JobRead]) -> dict[str, bool]:
        """Check results of the running allocations of jobs with a check: those the health
        watch last read (at most `health_interval` old), and a fresh read for the ones no
        deployment judged and the watch has not seen yet."""
        known = self._tracker.verdicts()
        unjudged = [
            str(alloc["ID"])
            for read in reads
            if read.view.has_check
            for alloc in read.allocs
            if is_live(alloc)
            and alloc.get("ClientStatus") == "running"
            and str(alloc["ID"]) not in known
            and not isinstance((alloc.get("DeploymentStatus") or {}).get("Healthy"), bool)
        ]
        return {**known, **await self._client.check_verdicts(unjudged)}

    async def _watch_health(self) -> None:
        """Keep the event feed's health live: Nomad has no event for a check result, and
        the one a deployment recorded is never revised, so look every `health_interval`."""
        while True:
            await anyio.sleep(self._health_interval)
            wanted = self._tracker.checked_allocs()
            if wanted:
                # check_verdicts never raises for one allocation; Nomad being away leaves
                # the health as it was until the next look.
                self._tracker.checks_seen(await self._client.check_verdicts(wanted))


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error(
            "a Nomad background task stopped: %s", task.get_name(), exc_info=task.exception()
        )


def _group(job_id: str) -> str:
    try:
        return split_job_id(job_id)[2]
    except ValueError:
        raise JobNotFound(job_id) from None


def _spec(view: JobView) -> ProcJob:
    if view.spec is None:
        raise SchedulerRejected(
            f"{view.job_id} was not registered by lain-console (its Meta has no "
            "lain-spec); deploy it again to manage it"
        )
    return view.spec


def _http_client(settings: NomadSettings, timeout: float) -> httpx.AsyncClient:
    """The httpx client for the event stream, with the same TLS rules as python-nomad's."""
    verify: ssl.SSLContext | bool = True
    if settings.address.startswith("https://") or settings.cert:
        verify = ssl.create_default_context(
            cafile=settings.ca_cert or None, capath=settings.ca_path or None
        )
        if settings.cert:
            verify.load_cert_chain(*settings.cert)
    headers = {"X-Nomad-Token": settings.token} if settings.token else {}
    hooks: list[Callable[[httpx.Request], Awaitable[None]]] = []
    if settings.tls_server_name:
        server_name = settings.tls_server_name

        async def expect_server_name(request: httpx.Request) -> None:
            # httpcore sends it as SNI and checks the certificate against it.
            request.extensions["sni_hostname"] = server_name

        hooks.append(expect_server_name)
    return httpx.AsyncClient(
        base_url=settings.address,
        headers=headers,
        verify=verify,
        timeout=timeout,
        auth=settings.basic_auth,
        event_hooks={"request": hooks},
    )
