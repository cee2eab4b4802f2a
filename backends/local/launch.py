"""What a local instance is given: argv, environment and working directory.

Pure functions of the job; the supervisor turns them into a `SpawnSpec`. `validate` says
which jobs the local backend can run at all.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from backends.errors import SchedulerRejected
from backends.types import ProcJob

__all__ = ["NO_CANARIES", "argv", "instance_env", "validate", "working_dir"]

# Job ids become file names; LAIN names are lower-case letters, digits, '-' and '.'.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


NO_CANARIES = (
    "canary deploys need the Nomad backend (LAIN_CONSOLE_BACKEND=nomad); the local backend "
    "replaces instances one at a time, each once its successor is ready, and has no canaries"
)


def validate(job: ProcJob) -> None:
    """Raise SchedulerRejected unless this backend can run `job`."""
    if not _SAFE_NAME.fullmatch(job.job_id) or ".." in job.job_id:
        raise SchedulerRejected(f"{job.job_id!r} is not a usable job id")
    if not argv(job):
        # Without an image there is nothing to fall back on: the cmd is all there is to run.
        raise SchedulerRejected(f"{job.job_id} has no cmd; the local backend runs the cmd itself")
    if job.num_instances < 0:
        raise SchedulerRejected(f"{job.job_id}: num_instances must be >= 0")
    if job.canary is not None:
        raise SchedulerRejected(f"{job.job_id}: {NO_CANARIES}")
    if job.memory_bytes < 0 or job.cpu < 0:
        raise SchedulerRejected(f"{job.job_id}: cpu and memory must be >= 0")
    if job.kill_timeout < 0 or job.setup_time < 0:
        raise SchedulerRejected(f"{job.job_id}: kill_timeout and setup_time must be >= 0")
    if ".." in PurePosixPath(job.working_dir).parts:
        raise SchedulerRejected(f"{job.job_id}: working_dir must stay inside the app directory")
    if job.port is not None and not 0 < job.port < 65536:
        raise SchedulerRejected(f"{job.job_id}: port {job.port} is out of range")


def argv(job: ProcJob) -> tuple[str, ...]:
    """The entrypoint followed by the cmd, as a container runtime would run them."""
    return (job.entrypoint or ()) + (job.cmd or ())


def working_dir(app_dir: Path, job: ProcJob) -> Path:
    """The app directory, or `working_dir` inside it.

    A container path such as /lain/app does not exist on this machine, so an absolute
    working_dir is taken relative to the app directory too.
    """
    relative = job.working_dir.lstrip("/")
    return app_dir / relative if relative else app_dir


def instance_env(
    job: ProcJob, number: int, *, port: int | None, path: str
) -> tuple[tuple[str, str], ...]:
    """The job's env (lain.yaml's, then TZ and LAIN_*), then what deployd added.

    The LAIN_* names come from the job when it has them: a portal's job is named per client
    (`<service>.portal.<portal>_<client>`), its instances are the portal's (LAIN_PROCNAME is
    the portal's proc name), and so is deployd's pod name. PATH comes from the console
    unless the job sets its own, so bare command names resolve.
    """
    env: dict[str, str] = dict(job.env)
    env.setdefault("LAIN_APPNAME", job.app)
    env.setdefault("LAIN_PROCNAME", job.proc)
    env.setdefault("LAIN_APP_RELEASE_VERSION", job.meta_version)
    env.update(
        {
            "DEPLOYD_POD_INSTANCE_NO": str(number),
            "DEPLOYD_POD_NAME": f"{job.app}.{job.proc_type}.{env['LAIN_PROCNAME']}",
            "DEPLOYD_POD_NAMESPACE": job.app,
        }
    )
    if port is not None:
        env["PORT"] = str(port)
    env.setdefault("PATH", path)
    return tuple(env.items())
