"""Subscription fan-out over graphql-transport-ws: each event executed once per group of
sockets, its payload encoded once, written to every socket through a bounded send queue.

A group is the sockets running the same operation document with the same variables for the
same caller (the access scope: what the selection may show depends on who asks). Each
socket's subscription keeps its own event stream, cursor and access checks
(`schema.subscriptions`); for every event it asks the `FanoutRenderer` for the group's
payload, which the first asker executes (through the schema, so validation, error masking
and logging are the usual ones) and the others await. The payload becomes a `next` frame
for the socket's operation id and goes into the socket's `Outbox`.

Every socket writes through its outbox, so a slow reader never delays the others: event
frames are queued without waiting, and a socket whose queue is full is closed with
`SLOW_SUBSCRIBER_CLOSE_CODE` and stops receiving. Messages Strawberry sends itself (acks,
pings, errors, the log stream) wait for room instead, as they waited for the socket before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import strawberry
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.types.graphql import OperationType

from resolvers.core.context import Principal
from schema.context import GraphQLContext
from schema.fanout import EventOutput, EventSource, use_event_output

__all__ = [
    "SLOW_SUBSCRIBER_CLOSE_CODE",
    "Fanout",
    "FanoutRenderer",
    "FanoutTransportWSHandler",
    "GroupedOperation",
    "Outbox",
]

log = logging.getLogger(__name__)

# A private-use websocket close code (4000-4999): the console closed the socket because the
# client did not read its events fast enough. It may reconnect and resume with `after`.
SLOW_SUBSCRIBER_CLOSE_CODE = 4008
SLOW_SUBSCRIBER_REASON = "Subscriber too slow: its send queue overflowed; resume with after"
_KEPT = 4096  # rendered (group, event) payloads remembered for the group's later sockets


@dataclass(frozen=True, slots=True)
class GroupedOperation:
    """An operation as the fan-out groups it: sockets whose operations are equal (and whose
    callers are) share each event's rendering."""

    query: str
    operation_name: str | None
    variables_key: str  # the variables as canonical JSON: equal variables, equal keys
    variables: Mapping[str, Any] | None = field(compare=False, hash=False)

    @classmethod
    def of(
        cls, query: str, operation_name: str | None, variables: Mapping[str, Any] | None
    ) -> GroupedOperation:
        key = json.dumps(variables or {}, sort_keys=True, separators=(",", ":"))
        return cls(query, operation_name, key, variables)


class _Rendering:
    """One event rendered for one group: the payload once known, and who waits for it.

    Waiters are plain futures, one per socket that asked before the payload was ready;
    one that goes away just cancels its own (a shared task or `asyncio.shield` would make
    each departure cost a search through every other waiter)."""

    __slots__ = ("done", "error", "payload", "waiters")

    def __init__(self) -> None:
        self.done = False
        self.payload: str | None = None
        self.error: BaseException | None = None
        self.waiters: list[asyncio.Future[None]] = []

    def finish(self, payload: str | None, error: BaseException | None) -> None:
        self.done, self.payload, self.error = True, payload, error
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)
        self.waiters.clear()

    def result(self) -> str | None:
        if self.error is not None:
            raise self.error
        return self.payload


class FanoutRenderer:
    """Executes an event subscription's selection once per (group, event) and keeps the
    encoded `payload` of its `next` message for the group's other sockets."""

    def __init__(
        self, schema: strawberry.Schema, encode_json: Callable[[object], str | bytes]
    ) -> None:
        self._schema = schema
        self._encode_json = encode_json
        self._taken: OrderedDict[Hashable, _Rendering] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self.executions = 0  # how many renderings ran (tests and the bench read it)

    async def payload(
        self,
        operation: GroupedOperation,
        context: GraphQLContext,
        cursor: int,
        source: EventSource,
    ) -> str | None:
        """The event's `next` payload as JSON text for this operation and the context's
        caller; None when the event shows nothing."""
        principal = context.principal
        key = (operation, principal, cursor)
        rendering = self._taken.get(key)
        if rendering is None:
            rendering = self._taken[key] = _Rendering()
            while len(self._taken) > _KEPT:
                self._taken.popitem(last=False)
            # A task of its own: the socket that asked first may go away meanwhile.
            rendered = self._finish(rendering, operation, context, principal, source)
            task = asyncio.create_task(rendered)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if not rendering.done:
            waiter = asyncio.get_running_loop().create_future()
            rendering.waiters.append(waiter)
            await waiter
        return rendering.result()

    async def _finish(
        self,
        rendering: _Rendering,
        operation: GroupedOperation,
        context: GraphQLContext,
        principal: Principal,
        source: EventSource,
    ) -> None:
        try:
            payload = await self._render(operation, context, principal, source)
        except Exception as exc:  # every socket of the group ends with it, as each would have
            rendering.finish(None, exc)
        else:
            rendering.finish(payload, None)

    async def _render(
        self,
        operation: GroupedOperation,
        context: GraphQLContext,
        principal: Principal,
        source: EventSource,
    ) -> str | None:
        value = await source()
        if value is None:
            return None
        self.executions += 1
        # A context of the group's own: the same services and caller as every socket in it,
        # and loaders that start empty for this event.
        rendering = GraphQLContext(
            services=context.services,
            principal=principal,
            websocket=True,
            request=context.request,
            recheck_seconds=context.recheck_seconds,
        )
        variables = operation.variables
        result = await self._schema.execute(
            operation.query,
            variable_values=dict(variables) if variables is not None else None,
            context_value=rendering,
            root_value=value,  # the subscription field resolves to its event
            operation_name=operation.operation_name,
            allowed_operation_types=(OperationType.SUBSCRIPTION,),
        )
        # The shape Strawberry's `Operation.send_next` sends.
        payload: dict[str, object] = {"data": result.data}
        if result.errors:
            payload["errors"] = [error.formatted for error in result.errors]
        if result.extensions:
            payload["extensions"] = result.extensions
        encoded = self._encode_json(payload)
        return encoded.decode() if isinstance(encoded, bytes) else encoded


@dataclass(frozen=True, slots=True)
class Fanout:
    """What the view gives its websocket handlers."""

    renderer: FanoutRenderer
    send_queue: int  # frames waiting per socket before it is closed as too slow


class _Close:
    """A close queued behind the frames before it."""

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason
        self.done = asyncio.Event()


class Outbox:
    """One socket's send queue, written by a task of its own.

    `put` never waits: when `limit` frames are already waiting the socket is closed with
    SLOW_SUBSCRIBER_CLOSE_CODE, the queue is dropped and `on_overflow` runs. `send` (for
    Strawberry's own messages) waits for room instead.
    """

    def __init__(
        self, ws: WebSocket, *, limit: int, on_overflow: Callable[[], None] | None = None
    ) -> None:
        self._ws = ws
        self._limit = limit
        self._on_overflow = on_overflow
        self._frames: deque[str | _Close] = deque()
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._closing = False
        self._writer: asyncio.Task[None] | None = None
        self.overflowed = False

    def put(self, frame: str) -> None:
        if self._closing:
            return
        if len(self._frames) >= self._limit:
            self._overflow()
            return
        self._frames.append(frame)
        self._wake()

    async def send(self, frame: str) -> None:
        while len(self._frames) >= self._limit and not self._closing:
            self._room.clear()
            await self._room.wait()
        if self._closing:
            return
        self._frames.append(frame)
        self._wake()

    async def close(self, code: int, reason: str) -> None:
        """Close after the frames queued so far have been written."""
        if self._closing:
            return
        close = _Close(code, reason)
        self._frames.append(close)
        self._wake()
        await close.done.wait()

    async def stop(self) -> None:
        """The connection is over: drop what is queued and end the writer."""
        self._closing = True
        self._room.set()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        self._drop()

    def _drop(self) -> None:
        for item in self._frames:
            if isinstance(item, _Close):
                item.done.set()
        self._frames.clear()

    def _wake(self) -> None:
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_forever())
        self._ready.set()

    def _overflow(self) -> None:
        log.info(
            "closing a websocket with %d: %d frames were waiting to be sent",
            SLOW_SUBSCRIBER_CLOSE_CODE,
            len(self._frames),
        )
        self.overflowed = True
        self._closing = True
        self._drop()
        self._room.set()
        if self._writer is not None:
            self._writer.cancel()  # it may wait for the socket to drain; nothing else will come
        self._writer = asyncio.create_task(
            self._close_now(SLOW_SUBSCRIBER_CLOSE_CODE, SLOW_SUBSCRIBER_REASON)
        )
        if self._on_overflow is not None:
            self._on_overflow()

    async def _close_now(self, code: int, reason: str) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await self._ws.close(code=code, reason=reason)

    async def _write_forever(self) -> None:
        frames = self._frames
        while True:
            await self._ready.wait()
            self._ready.clear()
            while frames:
                item = frames.popleft()
                if not self._room.is_set() and len(frames) < self._limit:
                    self._room.set()
                if isinstance(item, _Close):
                    self._closing = True
                    await self._close_now(item.code, item.reason)
                    item.done.set()
                    return
                try:
                    await self._ws.send_text(item)
                except (WebSocketDisconnect, RuntimeError, OSError):
                    # The peer is gone (or the socket closed): the handler ends on its own.
                    self._closing = True
                    self._drop()
                    self._room.set()
                    return


class _OperationOutput(EventOutput):
    """Where one operation's events go: its group's payload, framed with its id."""

    def __init__(
        self,
        handler: FanoutTransportWSHandler,
        operation: Operation[GraphQLContext, None],
    ) -> None:
        self._handler = handler
        self._operation = operation
        self._grouped = GroupedOperation.of(
            operation.query, operation.operation_name, operation.variables
        )
        self._prefix = '{"id":' + json.dumps(operation.id) + ',"type":"next","payload":'

    async def deliver(self, cursor: int, source: EventSource) -> None:
        handler = self._handler
        payload = await handler.renderer.payload(self._grouped, handler.context, cursor, source)
        if payload is None or self._operation.completed:
            return
        self._handler.outbox.put(self._prefix + payload + "}")


class FanoutTransportWSHandler(BaseGraphQLTransportWSHandler[GraphQLContext, None]):
    """graphql-transport-ws with every message written through the socket's `Outbox`, and
    event subscriptions delivered through the `FanoutRenderer`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        fanout: Fanout = self.view.fanout  # type: ignore[attr-defined]
        self.renderer = fanout.renderer
        socket: WebSocket = self.websocket.ws  # type: ignore[attr-defined]
        self.outbox = Outbox(socket, limit=fanout.send_queue, on_overflow=self._abandon)
        self.websocket.outbox = self.outbox  # type: ignore[attr-defined]

    async def send_message(self, message: Any) -> None:
        encoded = self.view.encode_json(message)
        await self.outbox.send(encoded.decode() if isinstance(encoded, bytes) else encoded)

    async def run_operation(self, operation: Operation[GraphQLContext, None]) -> None:
        # This runs in the operation's own task: the output is seen by its subscription only.
        use_event_output(_OperationOutput(self, operation))
        await super().run_operation(operation)

    async def shutdown(self) -> None:
        await super().shutdown()
        await self.outbox.stop()

    def _abandon(self) -> None:
        """The socket is being closed for reading too slowly: end its operations now, rather
        than when the close handshake (which waits for the client) completes."""
        for operation_id in list(self.operations):
            operation = self.operations.pop(operation_id)
            if operation.task is not None:
                operation.task.cancel()
