"""The local backend: every instance is a supervised OS process on this machine.

It behaves like Nomad's raw_exec driver, with the users of its exec driver: the proc's cmd is
exec'd as an argv list (no shell unless the cmd runs one) in the app's directory under the
data dir. The desired state of each job lives in files under the data dir (see `store`), so a
restarted console finds the processes it started (see `recovery`) instead of starting them twice.

Of a ProcJob this backend uses the cmd (after the entrypoint, if any), env, port,
healthcheck, working_dir (taken inside the app directory), memory_bytes (as an rlimit),
kill_timeout and setup_time. The image and cpu are only reported back: there are no
images and no CPU shares here, and `user` is not switched to: when the console is root,
every app runs as an unprivileged uid of its own instead (see `isolation`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from backends.errors import (
    JobNotFound,
    SchedulerConflict,
    SchedulerRejected,
    SchedulerUnavailable,
)
from backends.feed import EventFeed
from backends.local import launch
from backends.local.health import ProbeSchedule
from backends.local.instance import InstanceSupervisor, SupervisorContext
from backends.local.isolation import DEFAULT_APP_UIDS, AppSandbox
from backends.local.jobs import JobEntry
from backends.local.logs import LogPump, LogRetention, journaled_instances, read_tail
from backends.local.process import PortAllocator, terminate
from backends.local.recovery import RecoveredSlot, Recovery, recover
from backends.local.store import LocalStore
from backends.local.threads import ThreadBridge
from backends.logs import LogItem, LogLine, LogPosition, LogStream
from backends.types import (
    BackendHealth,
    EventKind,
    InstanceAction,
    InstanceState,
    ProcJob,
    ProcState,
    SchedulerEvent,
)

__all__ = ["LocalScheduler"]

_log = logging.getLogger(__name__)


class _State(Enum):
    UNOPENED = 1  # constructed, not entered yet
    OPENED = 2  # inside `async with`: supervising
    CLOSED = 3  # left; cannot be entered again


class LocalScheduler:
    """Runs procs as local processes; satisfies `backends.base.Scheduler`.

    Args:
        data_dir: holds job files, process records, logs and the apps' working directories.
        node_name: reported as every instance's node.
        host: reported as every instance's ip.
        backoff_initial: seconds before the first restart after a crash; doubles per crash.
        backoff_max: the longest wait between two restarts.
        backoff_reset: a process that ran this long starts the backoff over.
        health_interval: seconds between two health probes of an instance that has been
            healthy for `health_settle` seconds (jittered by 10%); before that, and while
            it fails, at most a second apart (a quarter second until the first pass). See
            `health.ProbeSchedule`.
        health_settle: how long an instance is probed often after it turned healthy (at
            least `min_healthy_time`, so that a rollout sees a relapse).
        probes: the whole probe schedule, instead of the two above.
        rollout_timeout: how long a rolling update waits for each new instance to be ready
            (plus the job's setup_time) before it stops and keeps the old instances.
        min_healthy_time: how long a new instance must stay up (its health check passed,
            if it has one) before it counts as ready and may replace an old one.
        enforce_memory: apply each job's memory_bytes as RLIMIT_AS (see `process`); turn it
            off where the apps' runtimes cannot live under an address-space limit.
        app_uids: when the console is root, each app runs as a uid of its own from this
            range (see `isolation`); otherwise as the console.
        stop_on_exit: leaving the context stops every process; by default they keep
            running and the next scheduler on the same data dir adopts them.
        log_max_bytes: an instance's stdout or stderr journal is rotated at this size.
        log_files: journal generations kept per stream and instance, the current one included.
        log_retention: how long and how much output of gone instances is kept.
        log_interval: seconds between two reads of the output files.
        log_follow_buffer: lines queued for one follower before it loses lines.
        log_lines: recent lines of output kept in memory per instance.
        clock: the time source for `started_at` (UTC, aware).
    """

    canary_deploys = False  # rollouts replace one instance at a time; see `promote`

    def __init__(
        self,
        *,
        data_dir: Path,
        node_name: str = "local",
        host: str = "127.0.0.1",
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        backoff_reset: float = 10.0,
        health_interval: float = 10.0,
        health_settle: float = 10.0,
        probes: ProbeSchedule | None = None,
        rollout_timeout: float = 60.0,
        min_healthy_time: float = 3.0,
        enforce_memory: bool = True,
        app_uids: range = DEFAULT_APP_UIDS,
        stop_on_exit: bool = False,
        log_max_bytes: int = 10 * 1024 * 1024,
        log_files: int = 3,
        log_retention: LogRetention | None = None,
        log_interval: float = 0.05,
        log_follow_buffer: int = 10_000,
        log_lines: int = 1000,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._data_dir = data_dir
        self._node_name = node_name
        self._host = host
        self._backoff = (backoff_initial, backoff_max, backoff_reset)
        self._probes = probes or ProbeSchedule(
            interval=health_interval, settle=max(health_settle, min_healthy_time)
        )
        self._rollout_timeout = rollout_timeout
        self._min_healthy_time = min_healthy_time
        self._enforce_memory = enforce_memory
        self._stop_on_exit = stop_on_exit
        self._clock = clock or functools.partial(datetime.now, UTC)
        # Instances get the console's PATH so that bare command names resolve.
        self._path = os.environ.get("PATH", os.defpath)
        self._state = _State.UNOPENED
        self._feed = EventFeed()
        self._bridge = ThreadBridge()
        self._store = LocalStore(data_dir)
        self._sandbox = AppSandbox(data_dir, app_uids)
        self._ports = PortAllocator()
        self._logs = LogPump(
            blocking=self._bridge,
            root=self._store.log_root,
            interval=log_interval,
            max_bytes=log_max_bytes,
            files=log_files,
            ring_lines=log_lines,
            retention=log_retention,
            follow_buffer=log_follow_buffer,
        )
        self._jobs: dict[str, JobEntry] = {}
        # Changes `state` shows before their event is published (the job spec replaced, a
        # slot dropped or swapped, a job forgotten: events follow once processes have moved).
        self._unpublished = 0
        # Per job id and kept after a remove, so a waiting apply still serializes with it.
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._tasks: set[asyncio.Task[None]] = set()
        self._retiring: set[InstanceSupervisor] = set()
        self._ctx: SupervisorContext | None = None

    # Lifecycle.

    async def __aenter__(self) -> LocalScheduler:
        """Adopt the processes an earlier console left, start what is missing.

        Raises SchedulerUnavailable when the data dir cannot be used.
        """
        if self._state is not _State.UNOPENED:
            raise RuntimeError("A LocalScheduler can be entered only once.")
        try:
            await self._bridge(self._store.prepare)
            recovery = await self._bridge(functools.partial(recover, self._store))
        except OSError as exc:
            raise SchedulerUnavailable(f"cannot use data dir {self._data_dir}: {exc}") from exc
        await self._warn_if_apps_cannot_reach_their_dirs()
        initial, maximum, reset = self._backoff
        self._ctx = SupervisorContext(
            store=self._store,
            sandbox=self._sandbox,
            blocking=self._bridge,
            ports=self._ports,
            publish=self._publish_instance,
            host=self._host,
            node_name=self._node_name,
            path=self._path,
            backoff_initial=initial,
            backoff_max=maximum,
            backoff_reset=reset,
            probes=self._probes,
            min_healthy_time=self._min_healthy_time,
            enforce_memory=self._enforce_memory,
            clock=self._clock,
        )
        self._state = _State.OPENED
        try:
            await self._restore(recovery)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        self._spawn_task(self._logs.run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop supervising; the processes keep running unless `stop_on_exit` was given."""
        if self._state is not _State.OPENED:
            return
        self._state = _State.CLOSED
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        supervisors = [sup for entry in self._jobs.values() for sup in entry.slots.values()]
        supervisors.extend(self._retiring)
        await asyncio.gather(*(sup.close(terminate=self._stop_on_exit) for sup in supervisors))
        await self._logs.flush()
        self._logs.fanout.close()
        self._feed.close()

    async def _warn_if_apps_cannot_reach_their_dirs(self) -> None:
        check = functools.partial(self._sandbox.blocking_parent, self._data_dir)
        found = await self._bridge(check)
        if found is not None:
            blocking, mode = found
            _log.warning(
                "apps run as uids of their own and cannot pass %s (mode %o) to reach their "
                "directories under %s by absolute path; put the data dir "
                "(LAIN_CONSOLE_DATA_DIR) where every user may pass, e.g. /var/lib/lain-console",
                blocking,
                mode,
                self._data_dir,
            )

    async def _restore(self, recovery: Recovery) -> None:
        await asyncio.gather(
            *(terminate(stray.adoption.handle, stray.kill_timeout) for stray in recovery.strays)
        )
        for stray in recovery.strays:
            stray.adoption.handle.close()
            record = stray.adoption.record
            await self._bridge(
                functools.partial(
                    self._store.delete_process, record.job_id, record.number, record.token
                )
            )
        for job_id in recovery.forgotten:
            await self._bridge(functools.partial(self._store.forget_processes, job_id))
        for recovered in recovery.jobs:
            job = recovered.file.job
            entry = JobEntry(job=job, stopped=set(recovered.file.stopped))
            self._jobs[job.job_id] = entry
            for number in range(1, job.num_instances + 1):
                self._add_slot(entry, number, recovered.slots.get(number, RecoveredSlot()))
            await self._save(entry)
            self._publish_proc(entry)
            if entry.stale():
                # A rolling update was interrupted by the restart: finish it.
                self._start_rollout(entry, self._rollout)

    def _spawn_task(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _require_open(self) -> None:
        if self._state is not _State.OPENED:
            raise SchedulerUnavailable("the local scheduler is not running")

    # The Scheduler protocol.

    async def apply(self, job: ProcJob) -> None:
        """Create the job or bring it to `job`; returns once the desired state is stored.

        Instances whose spec differs from `job` are then replaced in the background, one at
        a time (`ProcState.rollout` is RUNNING meanwhile): the new process is started, the
        old one stopped once the new one is ready (see `InstanceSupervisor.wait_ready`). If
        a new instance is not ready within `rollout_timeout`, the update stops there, the
        old instances keep running, the rollout is STOPPED and the proc's last_error says
        why; applying the job again resumes it.

        Raises SchedulerRejected for a job this backend cannot run (one without a cmd),
        SchedulerConflict while another rollout of the job runs.
        """
        self._require_open()
        launch.validate(job)
        async with self._locks[job.job_id]:
            entry = self._jobs.get(job.job_id)
            if entry is not None and entry.rolling and entry.job == job:
                return  # already on its way there
            self._refuse_while_rolling(job.job_id)
            await self._apply(job)

    async def promote(self, job_id: str) -> None:
        """Refused: this backend has no canaries (SchedulerRejected; JobNotFound first)."""
        self._require_open()
        if job_id not in self._jobs:
            raise JobNotFound(job_id)
        raise SchedulerRejected(f"{job_id} has nothing to promote: {launch.NO_CANARIES}")

    async def scale(self, job_id: str, num_instances: int) -> None:
        """Start or stop exactly the difference; the highest numbers stop first.

        Raises JobNotFound, SchedulerRejected.
        """
        self._require_open()
        if num_instances < 0:
            raise SchedulerRejected(f"{job_id}: num_instances must be >= 0, not {num_instances}")
        async with self._locks[job_id]:
            entry = self._entry(job_id)
            self._refuse_while_rolling(job_id)
            await self._apply(entry.job.with_count(num_instances))

    async def resize(self, job_id: str, *, cpu: int, memory_bytes: int) -> None:
        """Replace every instance by one of the new size (a rolling update, as `apply`).

        Raises JobNotFound, SchedulerRejected, SchedulerConflict.
        """
        self._require_open()
        async with self._locks[job_id]:
            self._refuse_while_rolling(job_id)
            job = self._entry(job_id).job.with_resources(cpu=cpu, memory_bytes=memory_bytes)
            launch.validate(job)
            await self._apply(job)

    async def remove(self, job_id: str) -> None:
        """Stop every instance and forget the job; nothing happens for an unknown job.

        A rollout of the job still running is cancelled first.
        """
        self._require_open()
        running = self._jobs.get(job_id)
        if running is not None and running.rollout is not None:
            running.rollout.cancel()
            await asyncio.wait({running.rollout})
        async with self._locks[job_id]:
            entry = self._jobs.get(job_id)
            if entry is None:
                return
            # The job file goes first: should the console die half-way, recovery finds
            # records without a job and terminates them.
            async with entry.save_lock:
                await self._store_call(functools.partial(self._store.delete_job, job_id))
                entry.removed = True  # a oneshot finishing now must not write it back
            del self._jobs[job_id]
            self._unpublished += 1
            await asyncio.gather(*(sup.close(terminate=True) for sup in entry.slots.values()))
            await self._logs.flush()  # the last words of the processes, before letting go
            for number in entry.slots:
                self._logs.detach(job_id, number)
            await self._store_call(functools.partial(self._store.forget_processes, job_id))
            self._feed.publish(EventKind.PROC_REMOVED, job_id)

    async def control(
        self, job_id: str, action: InstanceAction, instance: int | None = None
    ) -> None:
        """Start, stop or restart instance `instance` (from 1) or, with None, all of them.

        A stopped instance stays stopped (across console restarts too) until started.
        Restarting several instances of a service goes one at a time in the background (a
        rollout), each waiting for the previous one to be ready, as LAIN does; one that is
        not ready stops it. Raises JobNotFound, SchedulerRejected, SchedulerConflict.
        """
        self._require_open()
        async with self._locks[job_id]:
            entry = self._entry(job_id)
            self._refuse_while_rolling(job_id)
            numbers = self._targets(entry, instance)
            if action is InstanceAction.STOP:
                entry.stopped.update(numbers)
                await self._save(entry)
                await asyncio.gather(*(entry.slots[n].stop() for n in numbers))
                return
            entry.stopped.difference_update(numbers)
            await self._save(entry)
            if action is InstanceAction.START or not entry.job.is_service or len(numbers) == 1:
                for number in numbers:
                    slot = entry.slots[number]
                    await (slot.start() if action is InstanceAction.START else slot.restart())
                await self._save(entry)  # a oneshot started again is no longer finished
                return
            self._start_rollout(entry, functools.partial(self._restart_all, numbers=numbers))
            self._publish_proc(entry)

    async def state(self, job_id: str) -> ProcState:
        """The job's state; `exists` is False for an unknown job."""
        entry = self._jobs.get(job_id)
        if entry is None:
            return ProcState.missing(job_id)
        return entry.proc_state()

    async def states(self, job_ids: Sequence[str]) -> dict[str, ProcState]:
        return {job_id: await self.state(job_id) for job_id in job_ids}

    async def health(self) -> BackendHealth:
        """Ok while running with a writable data dir; never raises."""
        if self._state is not _State.OPENED:
            return BackendHealth(ok=False, detail="the local scheduler is not running")
        try:
            await self._bridge(self._store.probe_writable)
        except OSError as exc:
            return BackendHealth(ok=False, detail=f"data dir {self._data_dir}: {exc}")
        return BackendHealth(ok=True)

    @property
    def state_version(self) -> int | None:
        # Supervisors publish each change of their state in the step that makes it; what
        # the scheduler changes ahead of its events is counted in `_unpublished`. Both only
        # grow, so their sum moves with every change.
        if self._state is not _State.OPENED:
            return None
        return self._feed.cursor + self._unpublished

    def events(self, after: int | None = None) -> AsyncIterator[SchedulerEvent]:
        return self._feed.subscribe(after)

    async def log_tail(
        self,
        job_id: str,
        *,
        instance: int | None = None,
        lines: int = 100,
        stream: LogStream | None = None,
    ) -> list[LogLine]:
        """From the journals under the data dir, which outlive instances and jobs."""
        if self._state is _State.OPENED:
            await self._logs.flush()  # what was written a moment ago is part of the tail
        directory = self._store.log_dir(job_id)
        streams = [stream] if stream is not None else list(LogStream)

        def read() -> list[LogLine]:
            numbers = [instance] if instance is not None else journaled_instances(directory)
            return read_tail(directory, job_id, numbers, streams, lines)

        return await self._bridge(read)

    def log_follow(
        self,
        job_id: str,
        *,
        instance: int | None = None,
        tail: int = 0,
        after: LogPosition | None = None,
    ) -> AsyncIterator[list[LogItem]]:
        """Followers share the pump's one read of each file (see `logs`)."""
        self._require_open()

        def read_tail(count: int) -> Awaitable[list[LogLine]]:
            return self.log_tail(job_id, instance=instance, lines=count)

        return self._logs.fanout.follow(job_id, instance, read_tail, tail=tail, after=after)

    # Beyond the protocol.

    @property
    def log_bytes_read(self) -> int:
        """Bytes read from output files so far (the benchmark checks followers share it)."""
        return self._logs.bytes_read

    def logs(self, job_id: str, instance: int, *, limit: int | None = None) -> list[LogLine]:
        """Recent output lines of one instance, oldest first (stdout and stderr).

        The files keep more: `<data_dir>/local/logs/<job_id>/<n>.std{out,err}.log`.
        Raises JobNotFound, SchedulerRejected.
        """
        entry = self._entry(job_id)
        (number,) = self._targets(entry, instance)
        logs = self._logs.get(job_id, number)
        return logs.lines(limit) if logs is not None else []

    # Internals.

    def _entry(self, job_id: str) -> JobEntry:
        entry = self._jobs.get(job_id)
        if entry is None:
            raise JobNotFound(job_id)
        return entry

    def _targets(self, entry: JobEntry, instance: int | None) -> list[int]:
        if instance is None:
            return sorted(entry.slots)
        if not 1 <= instance <= entry.job.num_instances:
            raise SchedulerRejected(
                f"{entry.job.job_id} has no instance {instance}: instances are numbered "
                f"1 to {entry.job.num_instances}"
            )
        return [instance]

    async def _apply(self, job: ProcJob) -> None:
        entry = self._jobs.get(job.job_id)
        if entry is None:
            entry = JobEntry(job=job)
            await self._save(entry)
            self._jobs[job.job_id] = entry
            for number in range(1, job.num_instances + 1):
                self._add_slot(entry, number)
            self._publish_proc(entry)
            return
        if job.spec_hash() != entry.job.spec_hash():
            entry.error = ""  # another spec: what the last one's rollout said is history
        entry.job = job
        entry.stopped.intersection_update(range(1, job.num_instances + 1))
        self._unpublished += 1
        await self._save(entry)
        dropped = [
            entry.slots.pop(n) for n in sorted(entry.slots, reverse=True) if n > job.num_instances
        ]
        if dropped:
            self._unpublished += 1  # the slots are gone before their processes' last events
        for number in range(len(entry.slots) + 1, job.num_instances + 1):
            self._add_slot(entry, number)
        spec_hash = job.spec_hash()
        for supervisor in entry.slots.values():
            if supervisor.spec_hash == spec_hash:
                supervisor.job = job
        if entry.stale():
            self._start_rollout(entry, self._rollout)
        if dropped:
            # The desired state is stored: the caller need not wait for processes to end
            # (up to kill_timeout each). The proc's snapshot follows their exits, as it did
            # when this waited, so subscribers see each instance end and then the proc.
            self._retiring.update(dropped)
            self._spawn_task(self._let_go(entry, dropped))
        else:
            self._publish_proc(entry)

    def _refuse_while_rolling(self, job_id: str) -> None:
        entry = self._jobs.get(job_id)
        if entry is not None and entry.rolling:
            raise SchedulerConflict(
                f"{job_id} is rolling out its instances; try again when it has finished"
            )

    def _start_rollout(
        self, entry: JobEntry, work: Callable[[JobEntry], Coroutine[Any, Any, None]]
    ) -> None:
        """Run `work` as the job's rollout: tracked, so leaving the context cancels it."""

        async def run() -> None:
            try:
                await work(entry)
            except Exception:
                _log.exception("rollout of %s failed", entry.job.job_id)
                entry.note_error(f"rollout of {entry.job.job_id} failed: internal error")
            finally:
                entry.rollout = None
                if not entry.removed and self._state is _State.OPENED:
                    self._publish_proc(entry)

        entry.error = ""  # a new rollout supersedes what the last one said
        entry.rollout = self._spawn_task(run())

    async def _restart_all(self, entry: JobEntry, *, numbers: list[int]) -> None:
        """Restart instances one at a time, each once the previous one is ready again."""
        for position, number in enumerate(numbers):
            supervisor = entry.slots[number]
            await supervisor.restart()
            reason = await supervisor.wait_ready(self._ready_timeout(entry.job))
            if reason is not None:
                rest = numbers[position + 1 :]
                untouched = f"; instances {', '.join(map(str, rest))} were not restarted"
                self._rollout_stopped(
                    entry,
                    f"restart stopped at instance {number}: it {reason}{untouched if rest else ''}",
                )
                return

    async def _rollout(self, entry: JobEntry) -> None:
        """Replace the instances of an older spec, one at a time, new before old."""
        job = entry.job
        for number in entry.stale():
            old = entry.slots[number]
            if old.stopped or not job.is_service:
                # Nothing to keep serving meanwhile: a stopped slot or a run-once proc.
                await self._retire(old)
                self._add_slot(entry, number)
                continue
            new = self._supervisor(entry, number, RecoveredSlot())
            new.launch()
            try:
                reason = await new.wait_ready(self._ready_timeout(job))
            except BaseException:
                await new.close(terminate=True)
                raise
            if reason is not None:
                await new.close(terminate=True)
                old.republish()
                self._rollout_stopped(
                    entry,
                    f"rolling update stopped at instance {number}: the new one {reason}; "
                    "the old instances keep running",
                )
                return
            entry.slots[number] = new
            self._unpublished += 1
            await self._retire(old)
            # The old process's exit was the last word on this slot; the new one is current.
            new.republish()

    def _rollout_stopped(self, entry: JobEntry, error: str) -> None:
        _log.warning("%s: %s", entry.job.job_id, error)
        entry.note_error(error)

    async def _retire(self, supervisor: InstanceSupervisor) -> None:
        # Kept in `_retiring` until gone, so that leaving the context waits for it too.
        self._retiring.add(supervisor)
        await supervisor.close(terminate=True)
        self._retiring.discard(supervisor)

    def _ready_timeout(self, job: ProcJob) -> float:
        return self._rollout_timeout + job.setup_time

    def _supervisor(self, entry: JobEntry, number: int, slot: RecoveredSlot) -> InstanceSupervisor:
        assert self._ctx is not None
        job_id = entry.job.job_id
        return InstanceSupervisor(
            self._ctx,
            entry.job,
            number,
            self._logs.attach(job_id, number, self._store.log_dir(job_id)),
            stopped=number in entry.stopped,
            restarts=slot.restarts,
            last_error=slot.last_error,
            adoption=slot.adoption,
            finished=slot.finished,
            on_finished=functools.partial(self._save_quietly, entry),
        )

    def _add_slot(
        self, entry: JobEntry, number: int, slot: RecoveredSlot | None = None
    ) -> InstanceSupervisor:
        supervisor = self._supervisor(entry, number, slot or RecoveredSlot())
        entry.slots[number] = supervisor
        supervisor.launch()
        return supervisor

    async def _let_go(self, entry: JobEntry, dropped: list[InstanceSupervisor]) -> None:
        """End the processes of slots a scale-down dropped, highest number first."""
        for supervisor in dropped:
            await self._retire(supervisor)
        await self._logs.flush()  # their last words, before letting go of the files
        job_id = entry.job.job_id
        current = self._jobs.get(job_id)
        for supervisor in dropped:
            # A scale-up since then may have given the number to a new process, which
            # shares the number's log files: those stay attached.
            if current is None or supervisor.number not in current.slots:
                self._logs.detach(job_id, supervisor.number)
        if not entry.removed and current is entry and self._state is _State.OPENED:
            self._publish_proc(entry)

    async def _save(self, entry: JobEntry) -> None:
        """Write the job file. Raises SchedulerUnavailable when the data dir refuses it."""
        async with entry.save_lock:
            if entry.removed:
                return
            record = entry.to_file()
            await self._store_call(functools.partial(self._store.save_job, record))

    async def _save_quietly(self, entry: JobEntry) -> None:
        try:
            await self._save(entry)
        except SchedulerUnavailable as exc:
            _log.error("%s", exc)

    async def _store_call(self, action: Callable[[], None]) -> None:
        try:
            await self._bridge(action)
        except OSError as exc:
            raise SchedulerUnavailable(f"local data dir {self._data_dir}: {exc}") from exc

    def _publish_instance(self, state: InstanceState) -> None:
        self._feed.publish(EventKind.INSTANCE, state.job_id, instance=state)

    def _publish_proc(self, entry: JobEntry) -> None:
        self._feed.publish(EventKind.PROC, entry.job.job_id, proc=entry.proc_state())
