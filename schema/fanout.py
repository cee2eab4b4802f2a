"""Where an event subscription hands its events: to the transport's fan-out, not through
a GraphQL execution of its own.

A thousand sockets watching one proc would otherwise execute the same selection a thousand
times for every event. When the websocket transport runs a subscription it sets an
`EventOutput` for that operation; the subscription then keeps its own event stream and
access checks (its cursor, its `after`, its caller) and delivers each event to the output,
which executes the operation once per group of sockets with the same document, variables
and caller, and writes the same encoded payload to each of them. Without an output (the
legacy graphql-ws protocol, `schema.subscribe` in tests) the subscription yields its events
as any Strawberry subscription does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Protocol

__all__ = ["EventOutput", "event_output", "use_event_output"]

# Builds the value the subscription's root field resolves to for one event (None: the
# event shows nothing any more, e.g. its app was removed meanwhile).
EventSource = Callable[[], Awaitable[object | None]]


class EventOutput(Protocol):
    async def deliver(self, cursor: int, source: EventSource) -> None:
        """Send the event with this cursor to the subscriber; `source` is called at most
        once per group of subscribers sharing the rendering. Never waits for the socket."""
        ...


# Per operation: the transport runs each operation in a task of its own and sets this there.
_output: ContextVar[EventOutput | None] = ContextVar("event_output", default=None)


def event_output() -> EventOutput | None:
    return _output.get()


def use_event_output(output: EventOutput) -> None:
    """Deliver the event subscriptions run by the current task to `output`."""
    _output.set(output)
