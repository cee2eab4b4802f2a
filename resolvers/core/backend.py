"""The seam between resolvers and the scheduler: availability and error translation."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from backends.errors import (
    JobNotFound,
    SchedulerConflict,
    SchedulerError,
    SchedulerRejected,
    SchedulerUnavailable,
)
from backends.types import RolloutStatus
from resolvers.core.context import OpContext
from resolvers.core.errors import BackendUnavailable, Conflict, DomainError, InvalidInput, NotFound

__all__ = ["ensure_available", "refuse_while_rolling", "scheduler_errors", "translate"]


async def ensure_available(ctx: OpContext) -> None:
    """Refuse a mutation up front, before anything is stored, when the scheduler can't work.

    Raises:
        BackendUnavailable
    """
    health = await ctx.scheduler.health()
    if not health.ok:
        raise BackendUnavailable(f"the scheduler is unavailable: {health.detail}")


def refuse_while_rolling(
    ctx: OpContext, job_ids: Sequence[str], what: str, *, unless_canaries_wait: bool = False
) -> None:
    """Refuse an operation, before anything is stored, while one of the jobs rolls out:
    the rollout runs in the background and must not be overtaken half-way. Reads what the
    scheduler's events said, not the scheduler. With `unless_canaries_wait`, a rollout
    whose canaries are not promoted yet does not count: only canaries run the new spec
    then, and replacing them (an update) is how they are dropped.

    Raises:
        Conflict
    """
    rolling = []
    for job_id in job_ids:
        state = ctx.services.bus.proc_state(job_id)
        if state is None or state.rollout is not RolloutStatus.RUNNING:
            continue
        if unless_canaries_wait and state.canary is not None and not state.canary.promoted:
            continue
        rolling.append(job_id)
    if rolling:
        raise Conflict(
            f"{what} is busy with a rollout of {', '.join(rolling)}; try again when it has finished"
        )


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
