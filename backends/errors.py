"""Errors a scheduler raises; every backend translates its own failures into these.

SchedulerError
 ├── SchedulerUnavailable   the backend cannot be reached or answers with a server error
 ├── SchedulerConflict      the request clashes with work in progress (a running deployment)
 ├── JobNotFound            no job with that id
 └── SchedulerRejected      the backend refused the request as invalid
"""

from __future__ import annotations

__all__ = [
    "JobNotFound",
    "SchedulerConflict",
    "SchedulerError",
    "SchedulerRejected",
    "SchedulerUnavailable",
]


class SchedulerError(Exception):
    """Base of every scheduler failure; the message is safe to show to an operator."""


class SchedulerUnavailable(SchedulerError):
    pass


class SchedulerConflict(SchedulerError):
    pass


class JobNotFound(SchedulerError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id}")
        self.job_id = job_id


class SchedulerRejected(SchedulerError):
    pass
