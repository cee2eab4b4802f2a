"""Live events of an app or a proc, resumable from a cursor."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from resolvers.apps import get_app
from resolvers.core import loading
from resolvers.core.context import SYSTEM, OpContext, Principal
from resolvers.core.errors import BackendUnavailable, Forbidden, InvalidInput, Unauthenticated
from resolvers.core.events import AppEvent, EventSnapshot, decode_snapshot
from resolvers.readmodel.views import AppView

__all__ = [
    "Credentials",
    "EventSnapshot",
    "app_events",
    "event_snapshot",
    "parse_event_cursor",
    "proc_events",
    "take_snapshots",
    "while_permitted",
]


@dataclass(frozen=True, slots=True)
class Credentials:
    """How a subscription asks its caller's credentials again."""

    # A digest of the token: subscribers holding the same one share each event's check.
    key: str
    # The principal they stand for now; None when they are no longer valid.
    ask: Callable[[], Awaitable[Principal | None]]


async def take_snapshots(ctx: OpContext, events: Sequence[AppEvent]) -> list[EventSnapshot]:
    """The snapshots a batch of events shows, as the event log stores them: one read of
    the whole batch's apps and of the procs of those that name a proc, in one session.

    Read as the system: each subscriber's own access is checked before a snapshot reaches it.
    """
    system = OpContext(services=ctx.services, principal=SYSTEM)
    with_procs = sorted({event.app for event in events if event.proc is not None})
    names = sorted({event.app for event in events if event.app_view is None} | set(with_procs))
    apps, procs = (
        await loading.apps_and_procs(system, names, with_procs=with_procs) if names else ({}, {})
    )
    snapshots = []
    for event in events:
        app = event.app_view
        if app is None:
            found = apps.get(event.app)
            app = found if isinstance(found, AppView) else None
        proc = None
        of_app = procs.get(event.app, [])
        if event.proc is not None and app is not None and isinstance(of_app, list):
            proc = next((p for p in of_app if p.name == event.proc), None)
        snapshots.append(EventSnapshot(app=app, proc=proc))
    return snapshots


async def _take_snapshot(ctx: OpContext, event: AppEvent) -> EventSnapshot:
    stored = decode_snapshot(event)
    if stored is not None:
        return stored
    return (await take_snapshots(ctx, [event]))[0]


async def event_snapshot(ctx: OpContext, event: AppEvent) -> EventSnapshot:
    """The app and proc views an event shows: those it was stored with, or (for an event
    that never went through the log) read; either once per event for all subscribers.

    The subscriber's access is checked apart (`app_events`, `while_permitted`).
    """
    return await ctx.services.watch_reads.snapshots.get(
        event.cursor, lambda: _take_snapshot(ctx, event)
    )


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
    """Every event of the app after `after`, then live events.

    Raises (before the first event): NotFound, InvalidInput (a cursor no event had),
    CursorExpired (a cursor whose events were pruned).
    """
    cursor = parse_event_cursor(after)
    await get_app(ctx, name=name)
    await ctx.services.bus.check_cursor(cursor)
    return ctx.services.bus.subscribe(app=name, after=cursor)


async def proc_events(
    ctx: OpContext, *, app: str, proc: str, after: str | None = None
) -> AsyncIterator[AppEvent]:
    """Like `app_events`, for one proc. Raises: NotFound, InvalidInput, CursorExpired."""
    cursor = parse_event_cursor(after)
    await get_app(ctx, name=app)
    await ctx.services.bus.check_cursor(cursor)
    return ctx.services.bus.subscribe(app=app, proc=proc, after=cursor)


async def while_permitted(
    ctx: OpContext,
    events: AsyncIterator[AppEvent],
    *,
    app: str,
    credentials: Credentials | None,
    every: float,
) -> AsyncIterator[AppEvent]:
    """The events, for as long as the caller may still read the app.

    Access is checked again before each event is delivered (once per event for all the
    subscribers holding the same token), and at least every `every` seconds while none
    comes, so a revoked token or a removed maintainer stops receiving within that time. A
    userinfo outage is not a revocation: the last principal stands.

    Raises: Forbidden, when the credentials or the access are gone.
    """
    if not ctx.services.auth_enabled:
        async for event in events:
            yield event
        return
    await _recheck(ctx, app, credentials)
    iterator = aiter(events)
    pending: asyncio.Future[AppEvent] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(iterator))
            done, _ = await asyncio.wait({pending}, timeout=every)
            if pending not in done:
                await _recheck(ctx, app, credentials)
                continue
            arrived, pending = pending, None
            try:
                event = arrived.result()
            except StopAsyncIteration:
                return
            key = (credentials.key if credentials else ctx.principal.name, app, event.cursor)
            await ctx.services.watch_reads.checks.get(key, lambda: _recheck(ctx, app, credentials))
            yield event
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
        close = getattr(iterator, "aclose", None)
        if close is not None:
            await close()


async def _recheck(ctx: OpContext, app: str, credentials: Credentials | None) -> None:
    principal: Principal | None = ctx.principal
    if credentials is not None:
        try:
            principal = await credentials.ask()
        except BackendUnavailable:
            principal = ctx.principal
    if principal is None or not principal.authenticated:
        raise Forbidden("the credentials of this connection are no longer valid")
    try:
        await get_app(OpContext(services=ctx.services, principal=principal), name=app)
    except (Forbidden, Unauthenticated):
        raise Forbidden(f"access to app {app} was withdrawn") from None
