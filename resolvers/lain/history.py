"""Instance histories: the recent state changes of one instance (COMPAT 2.11, 3.12)."""

from __future__ import annotations

from dataclasses import dataclass

from resolvers.core.context import OpContext
from resolvers.core.instance_changes import StatusChange
from resolvers.procs import list_procs
from resolvers.readmodel.views import ProcType

__all__ = ["InstanceHistoryView", "StatusChange", "instance_history"]


@dataclass(frozen=True, slots=True)
class InstanceHistoryView:
    job_id: str
    instance: int
    changes: tuple[StatusChange, ...]  # newest first


async def instance_history(
    ctx: OpContext, *, app: str, proc: str, instance: int
) -> InstanceHistoryView | None:
    """The recent state changes of one instance; None when the app has no such running proc.

    Raises: Unauthenticated, NotFound (the app is not deployed), Forbidden.
    """
    for view in await list_procs(ctx, app=app):
        if view.name == proc and view.type is not ProcType.PORTAL:
            return InstanceHistoryView(
                job_id=view.job_id,
                instance=instance,
                changes=ctx.services.bus.changes.of(view.job_id, instance),
            )
    return None
