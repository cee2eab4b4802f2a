"""The local backend's files under the data dir: desired state, process records, paths.

    <data_dir>/local/jobs/<job_id>.json            desired state of a job (JobFile)
    <data_dir>/local/run/<job_id>/<n>.<token>.json one per process start (ProcessRecord)
    <data_dir>/local/run/<job_id>/<n>.<token>.pid  "<pid> <start time>", by the process itself
    <data_dir>/local/logs/<job_id>/<n>.std{out,err}.*      instance output (see `logs`)
    <data_dir>/apps/<app>/                         the app's working directory
    <data_dir>/local/uids.json                     which app runs as which uid (`isolation`)

A process record is written before the process is spawned, and the process writes its pid
file itself before it execs the app, so a console dying at any moment leaves no process of
ours that a later console cannot find.

Every method blocks on the file system; callers run them in a worker thread. Writes are
atomic (temporary file, then `os.replace`), so a crash leaves the old or the new version.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from backends.local.isolation import PASSABLE_DIR_MODE, PRIVATE_DIR_MODE
from backends.types import InstanceStatus, ProcJob

__all__ = ["FinishedRun", "JobFile", "LocalStore", "ProcessRecord"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FinishedRun:
    """How a oneshot instance ended, kept so a console restart does not run it again."""

    status: InstanceStatus  # COMPLETE or FAILED
    spec_hash: str
    exit_code: int | None = None
    last_error: str = ""
    started_at: datetime | None = None
    restarts: int = 0


@dataclass(frozen=True, slots=True)
class JobFile:
    job: ProcJob
    stopped: frozenset[int] = frozenset()  # instances stopped on request
    finished: dict[int, FinishedRun] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProcessRecord:
    """What re-adoption needs to know about one process it did not start itself."""

    job_id: str
    number: int
    token: str  # names the files of this process start
    spec_hash: str
    port: int | None
    started_at: datetime
    restarts: int
    env: tuple[str, ...]
    release: str = ""  # the job's meta version at the start ("" in records of older consoles)
    # From the pid file; None when the process never got as far as writing it.
    pid: int | None = None
    start_time: int | None = None  # clock ticks since boot, /proc/<pid>/stat field 22


class LocalStore:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.root = data_dir / "local"
        self._jobs = self.root / "jobs"
        self._run = self.root / "run"
        self._logs = self.root / "logs"
        self._apps = data_dir / "apps"

    def prepare(self) -> None:
        for directory in (self._jobs, self._run, self._logs, self._apps):
            directory.mkdir(parents=True, exist_ok=True)
        # App uids pass through the data dir and apps/ to their own directory and reach
        # nothing else (see `isolation`); jobs, records and logs are the console's alone.
        os.chmod(self.data_dir, PASSABLE_DIR_MODE)
        os.chmod(self._apps, PASSABLE_DIR_MODE)
        os.chmod(self.root, PRIVATE_DIR_MODE)

    def probe_writable(self) -> None:
        """Raise OSError unless a file can be written under the data dir."""
        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.root, prefix=".probe-"):
            pass

    def app_dir(self, app: str) -> Path:
        return self._apps / app

    @property
    def log_root(self) -> Path:
        return self._logs

    def log_dir(self, job_id: str) -> Path:
        return self._logs / job_id

    # Jobs.

    def save_job(self, record: JobFile) -> None:
        payload = {
            "job": asdict(record.job),
            "stopped": sorted(record.stopped),
            "finished": {
                str(number): _finished_to_dict(run) for number, run in record.finished.items()
            },
        }
        _write_json(self._jobs / f"{record.job.job_id}.json", payload)

    def delete_job(self, job_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self._jobs / f"{job_id}.json").unlink()

    def load_jobs(self) -> tuple[list[JobFile], set[str]]:
        """Every readable job, and the ids of job files that could not be read."""
        jobs: list[JobFile] = []
        unreadable: set[str] = set()
        for path in sorted(self._jobs.glob("*.json")):
            try:
                payload = json.loads(path.read_text())
                jobs.append(
                    JobFile(
                        job=_job_from_dict(payload["job"]),
                        stopped=frozenset(int(n) for n in payload.get("stopped", ())),
                        finished={
                            int(n): _finished_from_dict(run)
                            for n, run in payload.get("finished", {}).items()
                        },
                    )
                )
            except (OSError, ValueError, KeyError, TypeError) as exc:
                _log.error("cannot read job file %s: %s", path, exc)
                unreadable.add(path.stem)
        return jobs, unreadable

    # Process records.

    def save_process(self, record: ProcessRecord) -> None:
        """Write the record of a process about to be spawned (its pid is not known yet)."""
        payload = asdict(record)
        del payload["pid"], payload["start_time"]
        payload["started_at"] = record.started_at.isoformat()
        _write_json(self._record_path(record.job_id, record.number, record.token), payload)

    def pid_path(self, job_id: str, number: int, token: str) -> Path:
        """Where the process of record `token` writes "<pid> <start time>" before its exec."""
        return self._record_path(job_id, number, token).with_suffix(".pid")

    def delete_process(self, job_id: str, number: int, token: str) -> None:
        record = self._record_path(job_id, number, token)
        for path in (record, record.with_suffix(".pid")):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def load_processes(self, job_id: str) -> list[ProcessRecord]:
        records: list[ProcessRecord] = []
        for path in sorted((self._run / job_id).glob("*.json")):
            try:
                payload = json.loads(path.read_text())
                payload["started_at"] = datetime.fromisoformat(payload["started_at"])
                payload["env"] = tuple(payload["env"])
                record = ProcessRecord(**payload)
                pid_file = path.with_suffix(".pid")
                if pid_file.exists():
                    pid, start_time = (int(field) for field in pid_file.read_text().split())
                    record = replace(record, pid=pid, start_time=start_time)
                records.append(record)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                _log.error("cannot read process record %s: %s", path, exc)
        return records

    def recorded_job_ids(self) -> list[str]:
        """Jobs that have a process-record directory (possibly left by an interrupted remove)."""
        return sorted(path.name for path in self._run.iterdir() if path.is_dir())

    def forget_processes(self, job_id: str) -> None:
        shutil.rmtree(self._run / job_id, ignore_errors=True)

    def _record_path(self, job_id: str, number: int, token: str) -> Path:
        return self._run / job_id / f"{number}.{token}.json"


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as file:
            json.dump(payload, file, separators=(",", ":"))
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _job_from_dict(payload: dict[str, Any]) -> ProcJob:
    return ProcJob.from_dict(payload)


def _finished_to_dict(run: FinishedRun) -> dict[str, Any]:
    payload = asdict(run)
    payload["status"] = run.status.value
    payload["started_at"] = run.started_at.isoformat() if run.started_at else None
    return payload


def _finished_from_dict(payload: dict[str, Any]) -> FinishedRun:
    started_at = payload.get("started_at")
    return FinishedRun(
        status=InstanceStatus(payload["status"]),
        spec_hash=payload["spec_hash"],
        exit_code=payload.get("exit_code"),
        last_error=payload.get("last_error", ""),
        started_at=datetime.fromisoformat(started_at) if started_at else None,
        restarts=payload.get("restarts", 0),
    )
