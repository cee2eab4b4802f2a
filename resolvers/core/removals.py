"""Removing jobs, and remembering the removals the scheduler refused so they are retried.

Without this a job whose removal failed (an undeploy while the scheduler was down, the undo
of a failed first deploy) would run for ever: the app no longer wants it, so no reconciler
round would look for it.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from backends.errors import SchedulerError
from backends.types import split_job_id
from resolvers.core.context import OpContext
from store.models import PendingRemoval

__all__ = ["remove_job", "retry_removals"]


async def remove_job(ctx: OpContext, job_id: str) -> SchedulerError | None:
    """Remove the job; on failure remember it for the reconciler and return the error."""
    try:
        await ctx.scheduler.remove(job_id)
    except SchedulerError as exc:
        try:
            async with ctx.sessions.begin() as session:
                session.add(PendingRemoval(job_id=job_id, last_error=str(exc)))
        except IntegrityError:
            pass  # already remembered
        return exc
    return None


async def retry_removals(
    ctx: OpContext, desired: Collection[str], *, busy: Collection[str] = ()
) -> tuple[list[str], dict[str, str]]:
    """Retry every remembered removal; a job that is desired again is forgotten instead, and
    the jobs of `busy` apps wait for the next round.

    Returns the job ids removed and the errors of those still refused.
    """
    async with ctx.sessions() as session:
        pending = list((await session.execute(select(PendingRemoval))).scalars())
    removed: list[str] = []
    failed: dict[str, str] = {}
    for row in pending:
        if split_job_id(row.job_id)[0] in busy:
            continue
        if row.job_id not in desired:
            try:
                await ctx.scheduler.remove(row.job_id)
            except SchedulerError as exc:
                failed[row.job_id] = str(exc)
                continue
            removed.append(row.job_id)
        async with ctx.sessions.begin() as session:
            await session.execute(delete(PendingRemoval).where(PendingRemoval.id == row.id))
    return removed, failed
