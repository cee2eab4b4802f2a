"""The seam between resolvers and the scheduler: availability and error translation."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from backends.errors import (
    JobNotFound,
    SchedulerConflict,
    SchedulerError,
    SchedulerRejected,
    SchedulerUnavailable,
)
from resolvers.context import OpContext
from resolvers.errors import BackendUnavailable, Conflict, DomainError, InvalidInput, NotFound

__all__ = ["ensure_available", "scheduler_errors", "translate"]


async def ensure_available(ctx: OpContext) -> None:
    """Refuse a mutation up front, before anything is stored, when the scheduler can't work.

    Raises:
        BackendUnavailable
    """
    health = await ctx.scheduler.health()
    if not health.ok:
        raise BackendUnavailable(f"the scheduler is unavailable: {health.detail}")


def translate(exc: SchedulerError) -> DomainError:
    if isinstance(exc, SchedulerConflict):
        return Conflict(str(exc))
    if isinstance(exc, JobNotFound):
        return NotFound(f"the scheduler has no job {exc.job_id}")
    if isinstance(exc, SchedulerRejected):
        return InvalidInput(str(exc))
    if isinstance(exc, SchedulerUnavailable):
        return BackendUnavailable(str(exc))
    return BackendUnavailable(str(exc))


@contextlib.contextmanager
def scheduler_errors() -> Iterator[None]:
    """Turn a SchedulerError raised inside into the matching DomainError."""
    try:
        yield
    except SchedulerError as exc:
        raise translate(exc) from exc
