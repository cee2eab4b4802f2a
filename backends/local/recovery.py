"""Finding, after a console restart, the processes an earlier console left running.

Each job file says what should run; each process record says what was started. A record
whose process still lives (same pid and same start time) is adopted; one whose process is
gone means the instance died while no console watched, and it is started again with one
more restart counted. Live processes nobody wants any more (a slot scaled away or stopped,
a second process in a slot after an interrupted rolling update, a job removed half-way)
are handed back as strays to be terminated.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from backends.local.instance import Adoption
from backends.local.process import adopt
from backends.local.store import FinishedRun, JobFile, LocalStore, ProcessRecord
from backends.types import InstanceStatus

__all__ = ["RecoveredJob", "RecoveredSlot", "Recovery", "Stray", "recover"]

_DIED_AWAY = "exited while the console was not running"


@dataclass(frozen=True, slots=True)
class RecoveredSlot:
    adoption: Adoption | None = None
    restarts: int = 0
    last_error: str = ""
    finished: FinishedRun | None = None


@dataclass(frozen=True, slots=True)
class Stray:
    """A live process to terminate; its record is deleted once it is gone."""

    adoption: Adoption
    kill_timeout: float


@dataclass(frozen=True, slots=True)
class RecoveredJob:
    file: JobFile
    slots: dict[int, RecoveredSlot] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Recovery:
    jobs: list[RecoveredJob]
    strays: list[Stray]
    forgotten: list[str]  # jobs without a job file whose records can go once strays are gone


# Orphans of a removed job have no job file to read a kill timeout from.
_ORPHAN_KILL_TIMEOUT = 10.0


def recover(store: LocalStore) -> Recovery:
    """Read the data dir and sort every recorded process out (blocking; run it in a thread)."""
    files, unreadable = store.load_jobs()
    jobs: list[RecoveredJob] = []
    strays: list[Stray] = []
    for file in files:
        recovered, job_strays = _recover_job(store, file)
        jobs.append(recovered)
        strays.extend(job_strays)
    known = {file.job.job_id for file in files} | unreadable
    forgotten = [job_id for job_id in store.recorded_job_ids() if job_id not in known]
    for job_id in forgotten:
        live, _ = _find_processes(store, job_id)
        strays.extend(
            Stray(adoption, _ORPHAN_KILL_TIMEOUT) for found in live.values() for adoption in found
        )
    return Recovery(jobs=jobs, strays=strays, forgotten=forgotten)


def _recover_job(store: LocalStore, file: JobFile) -> tuple[RecoveredJob, list[Stray]]:
    job = file.job
    spec_hash = job.spec_hash()
    live, dead = _find_processes(store, job.job_id)
    slots: dict[int, RecoveredSlot] = {}
    strays: list[Stray] = []
    for number, found in live.items():
        wanted = (
            number <= job.num_instances
            and number not in file.stopped
            and _current_finish(file, number, spec_hash) is None
        )
        if not wanted:
            strays.extend(Stray(adoption, job.kill_timeout) for adoption in found)
            continue
        # Prefer the process running the current spec, then the youngest.
        found.sort(key=lambda a: (a.record.spec_hash == spec_hash, a.record.started_at))
        keep = found.pop()
        strays.extend(Stray(adoption, job.kill_timeout) for adoption in found)
        slots[number] = RecoveredSlot(adoption=keep, restarts=keep.record.restarts)
    for number in range(1, job.num_instances + 1):
        finished = _current_finish(file, number, spec_hash)
        if number in slots:
            continue
        if finished is not None:
            slots[number] = RecoveredSlot(finished=finished, restarts=finished.restarts)
        elif number in dead and number not in file.stopped:
            record = max(dead[number], key=lambda r: r.started_at)
            slots[number] = _died_away(record, job.is_service, spec_hash)
    return RecoveredJob(file=file, slots=slots), strays


def _current_finish(file: JobFile, number: int, spec_hash: str) -> FinishedRun | None:
    # A oneshot that finished under an older spec runs again under the new one.
    finished = file.finished.get(number)
    return finished if finished is not None and finished.spec_hash == spec_hash else None


def _died_away(record: ProcessRecord, is_service: bool, spec_hash: str) -> RecoveredSlot:
    if is_service:
        return RecoveredSlot(restarts=record.restarts + 1, last_error=_DIED_AWAY)
    if record.spec_hash != spec_hash:
        return RecoveredSlot()  # a oneshot of an older spec: the new one has yet to run
    # Whether a oneshot succeeded is unknown; running it twice could do harm, so it is not.
    finished = FinishedRun(
        status=InstanceStatus.FAILED,
        spec_hash=record.spec_hash,
        last_error=f"{_DIED_AWAY}; exit code unknown",
        started_at=record.started_at,
        restarts=record.restarts,
    )
    return RecoveredSlot(finished=finished, restarts=record.restarts)


def _find_processes(
    store: LocalStore, job_id: str
) -> tuple[dict[int, list[Adoption]], dict[int, list[ProcessRecord]]]:
    live: dict[int, list[Adoption]] = defaultdict(list)
    dead: dict[int, list[ProcessRecord]] = defaultdict(list)
    for record in store.load_processes(job_id):
        if record.pid is None or record.start_time is None:
            # Recorded but never spawned (or it failed before its exec): nothing ran.
            store.delete_process(job_id, record.number, record.token)
            continue
        handle = adopt(record.pid, record.start_time)
        if handle is None:
            store.delete_process(job_id, record.number, record.token)
            dead[record.number].append(record)
        else:
            live[record.number].append(Adoption(handle, record))
    return live, dead
