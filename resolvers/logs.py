"""Instance output: the tail of one instance, and a proc's output followed live.

Reading logs is reading the app: the same access rule as every other read (`get_proc`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from backends.logs import (
    MAX_TAIL,
    BadLogPosition,
    LogItem,
    LogLine,
    LogPosition,
    LogsDropped,
    LogStream,
)
from backends.types import split_job_id
from resolvers.core.backend import scheduler_errors
from resolvers.core.context import OpContext
from resolvers.core.errors import InvalidInput, NotFound
from resolvers.procs import get_proc
from resolvers.readmodel.views import ProcView

__all__ = [
    "MAX_TAIL",
    "FollowedBatch",
    "FollowedLog",
    "LogLine",
    "LogStream",
    "LogsDropped",
    "follow_logs",
    "names_of_job",
    "tail_logs",
]


@dataclass(frozen=True, slots=True)
class FollowedLog:
    """A line (or a drop marker) and the position that resumes right after it."""

    item: LogItem
    cursor: str


@dataclass(frozen=True, slots=True)
class FollowedBatch:
    """Lines read together, and where the reader stood before them."""

    items: list[LogItem]
    _before: LogPosition

    def with_cursors(self) -> list[FollowedLog]:
        """Each item with its resume cursor (computed on demand: encoding costs)."""
        position = self._before.copy()
        found = []
        for item in self.items:
            if isinstance(item, LogLine):
                position.advance(item)
            found.append(FollowedLog(item, position.encode()))
        return found


async def tail_logs(
    ctx: OpContext,
    *,
    app: str,
    proc: str,
    instance: int | None = None,
    tail: int = 100,
    stream: LogStream | None = None,
) -> list[LogLine]:
    """The newest `tail` lines of one instance (or of all, merged in time order), oldest
    first; [] for an instance that never ran.

    Raises: InvalidInput (tail, instance). NotFound (app, proc, instance).
    BackendUnavailable.
    """
    _check_tail(tail)
    view = await _instance_of(ctx, app, proc, instance)
    with scheduler_errors():
        return await ctx.scheduler.log_tail(
            view.job_id, instance=instance, lines=tail, stream=stream
        )


async def follow_logs(
    ctx: OpContext,
    *,
    app: str,
    proc: str,
    instance: int | None = None,
    tail: int = 100,
    after: str | None = None,
) -> AsyncIterator[FollowedBatch]:
    """The newest `tail` lines of the proc (every instance, or one) merged in time order,
    then its output as it is written, through restarts, rollouts and scaling; with
    `after` (a cursor given out earlier) the lines after it instead of the tail.

    The checks run before this returns, so bad input fails the call, not the iteration.
    Raises: InvalidInput (tail, instance, after). NotFound (app, proc, instance).
    BackendUnavailable.
    """
    _check_tail(tail)
    position = None
    if after is not None:
        try:
            position = LogPosition.decode(after)
        except BadLogPosition as exc:
            raise InvalidInput(f"after: {exc}", field="after") from None
    view = await _instance_of(ctx, app, proc, instance)
    with scheduler_errors():
        items = ctx.scheduler.log_follow(view.job_id, instance=instance, tail=tail, after=position)
    return _with_cursors(items, position or LogPosition())


async def _with_cursors(
    batches: AsyncIterator[list[LogItem]], position: LogPosition
) -> AsyncIterator[FollowedBatch]:
    try:
        with scheduler_errors():  # a backend failing mid-stream, as a domain error
            async for items in batches:
                before = position.copy()
                position.advance_all(items)
                yield FollowedBatch(items, before)
    finally:
        close = getattr(batches, "aclose", None)
        if close is not None:
            await close()


def names_of_job(job_id: str) -> tuple[str, str]:
    """(app, proc) of a job id, for callers that hold an instance's state."""
    app, _, proc = split_job_id(job_id)
    return app, proc


def _check_tail(tail: int) -> None:
    if isinstance(tail, bool) or not isinstance(tail, int) or not 0 <= tail <= MAX_TAIL:
        raise InvalidInput(f"tail must be an integer between 0 and {MAX_TAIL}", field="tail")


async def _instance_of(ctx: OpContext, app: str, proc: str, instance: int | None) -> ProcView:
    """The proc, after the access check; NotFound for an instance number it does not have."""
    if instance is not None and (
        isinstance(instance, bool) or not isinstance(instance, int) or instance < 1
    ):
        raise InvalidInput("instance must be a positive integer", field="instance")
    view = await get_proc(ctx, app=app, proc=proc)
    if instance is not None and not 1 <= instance <= max(view.num_instances, 1):
        raise NotFound(
            f"proc {proc} of app {app} has {view.num_instances} instances; "
            f"there is no instance {instance}",
            field="instance",
        )
    return view
