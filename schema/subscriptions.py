"""The Subscription root: app and proc events with full snapshots and resumable cursors."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from functools import partial

import strawberry

from resolvers import watch
from resolvers.core.events import AppEvent, AppEventKind
from schema.errors import raise_as_graphql
from schema.fanout import event_output
from schema.logs import LogEntry, follow_logs
from schema.types import App, Instance, Proc

__all__ = ["Event", "Subscription"]

strawberry.enum(AppEventKind, name="EventKind")


@strawberry.type(description="A change, with snapshots taken when it happened.")
class Event:
    cursor: str = strawberry.field(description="Pass as `after` to resume after this event.")
    kind: AppEventKind
    app: App
    proc: Proc | None
    instance: Instance | None


async def _event(info: strawberry.Info, event: AppEvent) -> Event | None:
    snapshot = await watch.event_snapshot(info.context.op, event)
    view = snapshot.app
    if view is None:  # the app was removed while the event travelled
        return None
    proc = None
    if snapshot.proc is not None:
        proc = Proc.from_view(snapshot.proc, event.proc_state)
    return Event(
        cursor=str(event.cursor),
        kind=event.kind,
        app=App.from_view(view),
        proc=proc,
        instance=Instance.from_state(event.instance) if event.instance is not None else None,
    )


async def _stream(
    info: strawberry.Info, events: AsyncIterator[AppEvent], *, app: str
) -> AsyncGenerator[Event]:
    """The events rendered, while the caller may still read the app; ends with FORBIDDEN.

    Over graphql-transport-ws the events go to the transport's fan-out (rendered once per
    group of sockets) and nothing is yielded here; errors still end the stream as usual.
    """
    context = info.context
    output = event_output()
    permitted = watch.while_permitted(
        context.op,
        events,
        app=app,
        credentials=context.credentials,
        every=context.recheck_seconds,
    )
    with raise_as_graphql():
        async for event in permitted:
            if output is not None:
                await output.deliver(event.cursor, partial(_event, info, event))
                continue
            rendered = await _event(info, event)
            if rendered is not None:
                yield rendered


@strawberry.type
class Subscription:
    @strawberry.subscription(description="Events of one app: its procs, instances and status.")
    async def app_events(
        self, info: strawberry.Info, name: str, after: str | None = None
    ) -> AsyncGenerator[Event]:
        with raise_as_graphql():
            events = await watch.app_events(info.context.op, name=name, after=after)
        async for event in _stream(info, events, app=name):
            yield event

    @strawberry.subscription(description="Events of one proc and its instances.")
    async def proc_events(
        self, info: strawberry.Info, app: str, proc: str, after: str | None = None
    ) -> AsyncGenerator[Event]:
        with raise_as_graphql():
            events = await watch.proc_events(info.context.op, app=app, proc=proc, after=after)
        async for event in _stream(info, events, app=app):
            yield event

    logs: AsyncGenerator[LogEntry] = strawberry.subscription(
        resolver=follow_logs,
        description="A proc's output (every instance, or one): the newest `tail` lines merged "
        "in time order, then each new line, through restarts and rollouts. `after` resumes "
        "after an entry's cursor instead of sending the tail.",
    )
