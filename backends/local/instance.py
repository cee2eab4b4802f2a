"""One instance slot's supervisor: start, watch, health-check and restart its process.

A supervisor runs one task, the only code that touches its process, so there is no race
between a crash and a stop request. Callers set a wish (stop, restart, close) and poke the
task; the task acts at its next step and the callers wait for the outcome.

    start ──▶ PENDING ──first check passes──▶ RUNNING ──exit──▶ FAILED ──backoff──▶ start
                 │  (no check: RUNNING at once)    │                  (oneshot: FAILED or
                 └────────── stop request ─────────┴──▶ EXITED          COMPLETE, for good)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backends.local import launch
from backends.local.health import PROBE_TIMEOUT, CheckKind, ProbeSchedule, check_kind, probe
from backends.local.isolation import AppSandbox
from backends.local.logs import InstanceLogs
from backends.local.process import (
    ExitInfo,
    PortAllocator,
    ProcessHandle,
    SpawnError,
    SpawnSpec,
    kill_leftovers,
    terminate,
)
from backends.local.store import FinishedRun, LocalStore, ProcessRecord
from backends.local.threads import ThreadBridge
from backends.types import InstanceState, InstanceStatus, ProcJob

__all__ = ["Adoption", "InstanceSupervisor", "SupervisorContext"]

_log = logging.getLogger(__name__)

# A failing check during startup is only reported as an error after this long (or after the
# job's setup_time, if longer): most apps refuse connections for a moment while starting.
_STARTUP_GRACE = 10.0


@dataclass(frozen=True, slots=True)
class SupervisorContext:
    """What every supervisor of one scheduler shares."""

    store: LocalStore
    sandbox: AppSandbox  # starts processes as their app's uid
    blocking: ThreadBridge
    ports: PortAllocator
    publish: Callable[[InstanceState], None]
    host: str
    node_name: str
    path: str  # the console's PATH, given to instances that do not set their own
    backoff_initial: float
    backoff_max: float
    backoff_reset: float  # a process that ran this long starts the backoff over
    probes: ProbeSchedule  # when to probe health checks
    min_healthy_time: float  # how long a new process must stay up before it counts as ready
    enforce_memory: bool  # apply memory_bytes as RLIMIT_AS
    clock: Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Adoption:
    """A process found alive after a console restart, with what was recorded at its start."""

    handle: ProcessHandle
    record: ProcessRecord


class InstanceSupervisor:
    """Keeps instance `number` of `job` running (or stopped, or finished) until closed.

    `spec_hash` is the spec of the process it runs, which differs from `job.spec_hash()`
    only for a process adopted from before an interrupted rolling update.
    """

    def __init__(
        self,
        ctx: SupervisorContext,
        job: ProcJob,
        number: int,
        logs: InstanceLogs,
        *,
        stopped: bool = False,
        restarts: int = 0,
        last_error: str = "",
        adoption: Adoption | None = None,
        finished: FinishedRun | None = None,
        on_finished: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._ctx = ctx
        self.job = job
        self.number = number
        self._logs = logs
        self._on_finished = on_finished
        self._check = check_kind(job)
        # Wishes, set by callers and acted on by the task.
        self._stop_requested = stopped
        self._restart_requested = False
        self._closing = False
        self._terminate_on_close = False
        # What is, written only by the task (and here).
        self._adoption = adoption
        self._finished = finished
        self._status = InstanceStatus.EXITED if stopped else InstanceStatus.PENDING
        self._healthy: bool | None = None if self._check is None else False
        self._pid: int | None = None
        self._started_at: datetime | None = None
        self._restarts = restarts
        self._last_error = last_error
        self._exit_code: int | None = None
        self._env: tuple[str, ...] = ()
        self._release = ""  # the meta version the current process was started with
        self.spec_hash = job.spec_hash()
        self.error_at = 0.0  # loop time of the last error, to pick the proc's last_error
        self._spawned_at = 0.0
        self._retry_at: float | None = None
        self._failures = 0  # consecutive crashes, for the backoff
        self._generation = 0  # processes started (or attempted) so far
        self._idle = False
        self._token = ""  # names the process record of the current process
        self.probe_failure = ""  # why the last health probe failed, "" after a pass
        self._healthy_since: float | None = None  # loop time its check last turned passing
        if adoption is not None:
            record = adoption.record
            if record.port is not None:
                ctx.ports.reserve(record.port)
            self._port = record.port
            self.spec_hash = record.spec_hash
        else:
            self._port = ctx.ports.allocate() if job.port is not None else None
        if finished is not None:
            self._release = job.meta_version if finished.spec_hash == job.spec_hash() else ""
            self._status = finished.status
            self._exit_code = finished.exit_code
            self._started_at = finished.started_at
        if last_error:
            self.error_at = asyncio.get_running_loop().time()
        self._poke = asyncio.Event()
        self._changed = asyncio.Event()
        self._published: InstanceState | None = None
        self._task: asyncio.Task[None] | None = None

    # The caller's side.

    def launch(self) -> None:
        """Start supervising; publishes the first snapshot at once."""
        handle = self._take_adoption()
        self._emit()
        self._task = asyncio.create_task(self._run(handle), name=f"{self.job.job_id}#{self.number}")

    @property
    def stopped(self) -> bool:
        return self._stop_requested

    @property
    def finished_run(self) -> FinishedRun | None:
        return self._finished

    def snapshot(self) -> InstanceState:
        return InstanceState(
            job_id=self.job.job_id,
            number=self.number,
            status=self._status,
            healthy=self._healthy,
            instance_id=str(self._pid) if self._pid is not None else "",
            ip=self._ctx.host,
            port=self._port,
            node=self._ctx.node_name,
            started_at=self._started_at,
            restarts=self._restarts,
            last_error=self._last_error,
            exit_code=self._exit_code,
            env=self._env,
            release=self._release,
        )

    def republish(self) -> None:
        """Publish the current snapshot again (after another process left this slot)."""
        self._ctx.publish(self.snapshot())

    async def stop(self) -> None:
        """Stop the process (SIGTERM, SIGKILL after kill_timeout) and keep it stopped."""
        self._stop_requested = True
        self._restart_requested = False
        self._poke.set()
        await self._wait_for(lambda: self._idle and self._stop_requested)

    async def start(self) -> None:
        """Start again an instance stopped on request or finished (a oneshot)."""
        if not self._stop_requested and self._finished is None:
            return
        generation = self._generation
        self._stop_requested = False
        self._finished = None
        self._poke.set()
        await self._wait_for(lambda: self._generation > generation)

    async def restart(self) -> None:
        """Stop the process if it runs and start a new one; counts as a restart."""
        generation = self._generation
        self._restart_requested = True
        self._poke.set()
        await self._wait_for(lambda: self._generation > generation)

    async def wait_ready(self, within: float) -> str | None:
        """Wait until the process may replace another; None when it may, else why not.

        Ready means running, its health check (if any) passed, and up without a break for
        the minimum healthy time (or the job's setup_time, if longer): a process that execs
        and then crashes is not ready. Gives up at once when the process fails.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        settle = max(self._ctx.min_healthy_time, float(self.job.setup_time))

        def failed() -> bool:
            # Only a failure from now on: a restarted slot may still show its last crash.
            return self._status is InstanceStatus.FAILED and self.error_at >= deadline - within

        if not await self._wait_for(lambda: self._is_up() or failed(), within):
            return self._not_ready(within)
        if failed():
            return f"failed ({self._last_error})"
        generation = self._generation

        def fell() -> bool:
            return self._generation != generation or not self._is_up()

        remaining = self._spawned_at + settle - loop.time()
        if remaining > 0:
            if await self._wait_for(fell, min(remaining, deadline - loop.time())):
                why = self._last_error or self.probe_failure or str(self._status)
                return f"did not stay up for {settle:g}s ({why})"
            if loop.time() < self._spawned_at + settle:
                return self._not_ready(within)
        return None

    def _not_ready(self, within: float) -> str:
        why = self.probe_failure or self._last_error or "never started"
        return f"was not ready within {within:g}s ({why})"

    async def close(self, *, terminate: bool) -> None:
        """End supervision; with `terminate` stop the process, else leave it running."""
        self._closing = True
        # Once asked to terminate, a later close without it must not undo that.
        self._terminate_on_close = self._terminate_on_close or terminate
        self._poke.set()
        if self._task is not None:
            await asyncio.wait({self._task})
        self._ctx.ports.release(self._port)

    def _is_up(self) -> bool:
        return self._status is InstanceStatus.RUNNING and self._healthy is not False

    async def _wait_for(self, predicate: Callable[[], bool], within: float | None = None) -> bool:
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        while not predicate():
            if self._task is None or self._task.done():
                return predicate()
            changed = self._changed
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                return predicate()
        return True

    # The task's side.

    def _emit(self) -> None:
        snapshot = self.snapshot()
        if snapshot != self._published:
            self._published = snapshot
            self._ctx.publish(snapshot)
        # Wake whoever waits for a change, and start a fresh Event for the next one.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _run(self, handle: ProcessHandle | None) -> None:
        try:
            while True:
                if handle is None:
                    if self._closing:
                        break
                    handle = await self._next_process()
                    # Closed while it was starting: `_watch` still ends (or leaves) it.
                    continue
                info = await self._watch(handle)
                if info is None:  # closing without terminating: leave it to a later console
                    handle.close()
                    return
                await self._ended(handle, info)
                handle = None
            if self._terminate_on_close and self._finished is None:
                self._status = InstanceStatus.EXITED
                self._emit()
        except Exception as exc:
            _log.exception("supervisor of %s#%d failed", self.job.job_id, self.number)
            if handle is not None:
                handle.signal_group(signal.SIGKILL)
                handle.close()
            self._fail(f"supervisor error: {exc}")
            self._emit()

    def _take_adoption(self) -> ProcessHandle | None:
        adoption, self._adoption = self._adoption, None
        if adoption is None:
            return None
        record = adoption.record
        self._token = record.token
        self._generation += 1
        self._pid = record.pid
        self._started_at = record.started_at
        self._env = record.env
        self._release = record.release or _release_in(record.env)
        self._status = InstanceStatus.PENDING if self._check else InstanceStatus.RUNNING
        # The process has run for an unknown time; count its age from now.
        self._spawned_at = asyncio.get_running_loop().time()
        return adoption.handle

    async def _next_process(self) -> ProcessHandle | None:
        """Start the next process when it is due; None when there is nothing to start yet."""
        if self._restart_requested:
            self._restart_requested = False
            self._stop_requested = False
            self._finished = None
            self._retry_at = None
            return await self._spawn(restarted=True)
        if self._stop_requested or self._finished is not None:
            self._retry_at = None
            if self._stop_requested and self._finished is None:
                # A finished oneshot keeps saying how it ended.
                self._status = InstanceStatus.EXITED
            self._idle = True
            self._emit()
            await self._sleep()
            self._idle = False
            return None
        if self._retry_at is not None:
            if not await self._backoff():
                return None
            self._retry_at = None
            return await self._spawn(restarted=True)
        return await self._spawn()

    async def _backoff(self) -> bool:
        """Sleep until the retry is due; False when a wish interrupted the wait."""
        loop = asyncio.get_running_loop()
        while self._retry_at is not None:
            if self._closing or self._stop_requested or self._restart_requested:
                return False
            remaining = self._retry_at - loop.time()
            if remaining <= 0:
                return True
            await self._sleep(remaining)
        return True

    async def _sleep(self, seconds: float | None = None) -> None:
        """Sleep until poked (or `seconds` passed)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._poke.wait(), seconds)
        self._poke.clear()

    async def _spawn(self, *, restarted: bool = False) -> ProcessHandle | None:
        job, store = self.job, self._ctx.store
        self._generation += 1
        self._token = secrets.token_hex(6)
        env = launch.instance_env(job, self.number, port=self._port, path=self._ctx.path)
        # What the snapshot shows of this run changes only where it is published (`_began`,
        # then `_emit`): a read between two events must show the state of the last one.
        run = _Run(
            env=tuple(f"{key}={value}" for key, value in env),
            started_at=self._ctx.clock(),
            release=job.meta_version,
            restarts=self._restarts + 1 if restarted else self._restarts,
        )
        self.spec_hash = job.spec_hash()
        record = ProcessRecord(
            job_id=job.job_id,
            number=self.number,
            token=self._token,
            spec_hash=self.spec_hash,
            port=self._port,
            started_at=run.started_at,
            restarts=run.restarts,
            env=run.env,
            release=run.release,
        )
        # Recorded before the spawn, so that a console dying meanwhile cannot lose it.
        await self._store(functools.partial(store.save_process, record))
        app_dir = store.app_dir(job.app)
        spec = SpawnSpec(
            argv=launch.argv(job),
            env=env,
            cwd=launch.working_dir(app_dir, job),
            stdout=self._logs.stdout_path,
            stderr=self._logs.stderr_path,
            memory_bytes=job.memory_bytes if self._ctx.enforce_memory else 0,
            pid_file=store.pid_path(job.job_id, self.number, self._token),
        )
        try:
            handle = await self._ctx.blocking(
                functools.partial(self._ctx.sandbox.spawn, job.app, app_dir, spec)
            )
        except SpawnError as exc:
            reason = str(exc).replace("\n", " ")
            _log.warning("%s: cannot start: %s", self._who(), reason)
            await self._forget_record()
            self._pid = None
            self._began(run)
            await self._crashed(reason, exit_code=None)
            return None
        self._pid = handle.pid
        self._began(run)
        self._spawned_at = asyncio.get_running_loop().time()
        self._status = InstanceStatus.RUNNING if self._check is None else InstanceStatus.PENDING
        self._emit()
        return handle

    def _began(self, run: _Run) -> None:
        self._env = run.env
        self._started_at = run.started_at
        self._release = run.release
        self._restarts = run.restarts
        self._exit_code = None
        self._healthy = None if self._check is None else False
        self._healthy_since = None

    async def _forget_record(self) -> None:
        forget = self._ctx.store.delete_process
        await self._store(functools.partial(forget, self.job.job_id, self.number, self._token))

    async def _watch(self, handle: ProcessHandle) -> ExitInfo | None:
        """Probe health until the process ends or a wish needs it ended; None: leave it."""
        loop = asyncio.get_running_loop()
        exited = asyncio.ensure_future(handle.wait())
        probe: asyncio.Future[str | None] | None = None
        # Kept across probes: most wake-ups are a probe's, and this loop runs for every
        # probe of every instance.
        poked: asyncio.Future[Any] | None = None
        next_probe = loop.time()
        try:
            while True:
                if self._closing and not self._terminate_on_close:
                    return None
                if self._closing or self._stop_requested or self._restart_requested:
                    return await terminate(handle, float(self.job.kill_timeout))
                if probe is None and self._check is not None and loop.time() >= next_probe:
                    probe = asyncio.ensure_future(self._probe(self._check))
                if poked is None:
                    poked = asyncio.ensure_future(self._poke.wait())
                waiting: set[asyncio.Future[Any]] = {exited, poked}
                timeout = None
                if probe is not None:
                    waiting.add(probe)
                elif self._check is not None:
                    timeout = max(0.0, next_probe - loop.time())
                done, _ = await asyncio.wait(
                    waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if exited in done:
                    return exited.result()
                if poked in done:
                    self._poke.clear()
                    poked = None
                if probe is not None and probe.done():
                    self._probed(probe.result())
                    probe = None
                    next_probe = loop.time() + self._probe_interval()
        finally:
            for future in (exited, probe, poked):
                if future is not None and not future.done():
                    future.cancel()

    def _probe_interval(self) -> float:
        since = self._healthy_since
        return self._ctx.probes.delay(
            passed=self._status is not InstanceStatus.PENDING,
            healthy_for=None if since is None else asyncio.get_running_loop().time() - since,
            settle=float(self.job.setup_time),
        )

    async def _probe(self, kind: CheckKind) -> str | None:
        assert self._port is not None  # a check exists only for a proc with a port
        return await probe(kind, self._port, self.job.healthcheck, seconds=PROBE_TIMEOUT)

    def _probed(self, failure: str | None) -> None:
        loop = asyncio.get_running_loop()
        self.probe_failure = failure or ""
        if failure is None:
            if not self._healthy:
                _log.info("%s: health check passes", self._who())
                self._healthy_since = loop.time()
            self._healthy = True
            self._status = InstanceStatus.RUNNING
        elif self._status is InstanceStatus.RUNNING:
            if self._healthy:  # report the turn to unhealthy, not every failed probe
                self._unhealthy(failure)
            self._healthy = False
            self._healthy_since = None
        else:
            grace = max(float(self.job.setup_time), _STARTUP_GRACE)
            if loop.time() - self._spawned_at >= grace and not self._last_error.startswith(
                "health check failed"
            ):
                self._unhealthy(failure)
        self._emit()

    def _unhealthy(self, failure: str) -> None:
        error = f"health check failed: {failure}"
        _log.warning("%s: %s", self._who(), error)
        self._note_error(error)

    async def _ended(self, handle: ProcessHandle, info: ExitInfo) -> None:
        kill_leftovers(handle)
        handle.close()
        await self._forget_record()
        if self._check is not None:
            self._healthy = False
            self._healthy_since = None
        if self._closing or self._stop_requested or self._restart_requested:
            self._status = InstanceStatus.EXITED
            self._exit_code = info.exit_code
            self._emit()
            return
        await self._crashed(info.describe(), exit_code=info.exit_code, clean=info.code == 0)

    async def _crashed(self, error: str, *, exit_code: int | None, clean: bool = False) -> None:
        """The process ended (or never started) on its own: finish a oneshot, else back off."""
        loop = asyncio.get_running_loop()
        self._exit_code = exit_code
        if not self.job.is_service:
            if clean:
                self._status = InstanceStatus.COMPLETE
            else:
                self._fail(error)
            self._finished = FinishedRun(
                status=self._status,
                spec_hash=self.spec_hash,
                exit_code=exit_code,
                last_error=self._last_error,
                started_at=self._started_at,
                restarts=self._restarts,
            )
            self._emit()
            if self._on_finished is not None:
                await self._on_finished()
            return
        if self._pid is not None and loop.time() - self._spawned_at >= self._ctx.backoff_reset:
            self._failures = 0
        self._failures += 1
        delay = self._ctx.backoff_initial * 2 ** min(self._failures - 1, 32)
        self._retry_at = loop.time() + min(delay, self._ctx.backoff_max)
        self._fail(error)
        self._emit()

    def _fail(self, error: str) -> None:
        self._status = InstanceStatus.FAILED
        self._note_error(error)

    def _note_error(self, error: str) -> None:
        self._last_error = error
        self.error_at = asyncio.get_running_loop().time()

    def _who(self) -> str:
        return f"app {self.job.app} proc {self.job.proc} instance {self.number}"

    async def _store(self, action: Callable[[], None]) -> None:
        # A full disk must not kill supervision; re-adoption is the only thing that suffers.
        try:
            await self._ctx.blocking(action)
        except OSError as exc:
            _log.error("%s#%d: cannot update process record: %s", self.job.job_id, self.number, exc)


@dataclass(frozen=True, slots=True)
class _Run:
    """What a spawn is about to start, shown once it has started (or failed to)."""

    env: tuple[str, ...]
    started_at: datetime
    release: str
    restarts: int


def _release_in(env: tuple[str, ...]) -> str:
    # Records written before they held the release: the variable every job is given says it.
    prefix = "LAIN_APP_RELEASE_VERSION="
    return next((item[len(prefix) :] for item in env if item.startswith(prefix)), "")
