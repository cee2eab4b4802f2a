"""Live events of an app or a proc, resumable from a cursor."""

from __future__ import annotations

from collections.abc import AsyncIterator

from resolvers.apps import get_app
from resolvers.context import OpContext
from resolvers.errors import InvalidInput
from resolvers.events import AppEvent

__all__ = ["app_events", "parse_event_cursor", "proc_events"]


def parse_event_cursor(after: str | None) -> int | None:
    """Raises: InvalidInput, for anything but a cursor a previous event carried."""
    if after is None:
        return None
    if not after.isdigit() or len(after) > 18:
        raise InvalidInput(f"after: {after!r} is not an event cursor", field="after")
    return int(after)


async def app_events(
    ctx: OpContext, *, name: str, after: str | None = None
) -> AsyncIterator[AppEvent]:
    """Every event of the app after `after` still held in history, then live events.

    Raises (before the first event): NotFound, InvalidInput.
    """
    cursor = parse_event_cursor(after)
    await get_app(ctx, name=name)
    return ctx.services.bus.subscribe(app=name, after=cursor)


async def proc_events(
    ctx: OpContext, *, app: str, proc: str, after: str | None = None
) -> AsyncIterator[AppEvent]:
    """Like `app_events`, for one proc. Raises: NotFound, InvalidInput."""
    cursor = parse_event_cursor(after)
    await get_app(ctx, name=app)
    return ctx.services.bus.subscribe(app=app, proc=proc, after=cursor)
