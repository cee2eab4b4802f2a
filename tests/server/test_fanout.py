"""Subscription fan-out (server/fanout.py): one rendering per group of sockets and event, the
same bytes to each of them, and a bounded send queue per socket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import WebSocketRoute
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from backends.types import InstanceAction
from server.app import create_app
from server.fanout import SLOW_SUBSCRIBER_CLOSE_CODE, FanoutRenderer
from server.graphql import ControlPlaneGraphQL
from server.settings import load_settings
from tests.fakes.scheduler import FakeScheduler
from tests.live import GraphQLHttp, register_hello, serve

JOB = "hello.worker.jobs"  # two instances: a restart of the proc is two events
WATCH = """subscription($app: String!, $proc: String!, $after: String) {
  procEvents(app: $app, proc: $proc, after: $after) {
    cursor kind instance { number restarts } proc { name numInstances }
  }
}"""
DEADLINE = 30.0
SEND_QUEUE = 4


@dataclass
class Live:
    url: str
    gql: GraphQLHttp
    scheduler: FakeScheduler
    renderer: FanoutRenderer


@pytest.fixture
async def live(database_url: str, data_dir: Path, engine: object) -> AsyncIterator[Live]:
    scheduler = FakeScheduler()
    settings = replace(
        load_settings({}),
        data_dir=data_dir,
        database_url=database_url,
        subscription_send_queue=SEND_QUEUE,
    )
    app = create_app(settings, scheduler=scheduler)
    (view,) = [r.endpoint for r in app.routes if isinstance(r, WebSocketRoute)]
    assert isinstance(view, ControlPlaneGraphQL)
    # No keepalive pings from the server: a client that stops reading could not answer them,
    # and the test of such a client must see the console's own close, not the ping timeout.
    async with (
        serve(app, ws_ping_interval=None) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        gql = GraphQLHttp(client)
        await register_hello(gql)
        await gql('mutation { deployApp(input: {name: "hello"}) { errors { code } } }')
        yield Live(url, gql, scheduler, view.fanout.renderer)


@contextlib.asynccontextmanager
async def _socket(
    url: str, variables: dict[str, Any], *, query: str = WATCH, **options: Any
) -> AsyncIterator[ClientConnection]:
    ws_url = url.replace("http://", "ws://") + "/graphql"
    async with connect(ws_url, subprotocols=[Subprotocol("graphql-transport-ws")], **options) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        payload = {"query": query, "variables": variables}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        yield ws


async def _frames(ws: ClientConnection, count: int) -> list[str]:
    """The next `count` frames that are not pings, as the bytes came."""
    frames: list[str] = []
    async with asyncio.timeout(DEADLINE):
        while len(frames) < count:
            raw = await ws.recv()
            assert isinstance(raw, str)
            if json.loads(raw)["type"] not in ("ping", "pong"):
                frames.append(raw)
    return frames


def _cursors(frames: list[str]) -> list[int]:
    cursors = []
    for frame in frames:
        message = json.loads(frame)
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        cursors.append(int(message["payload"]["data"]["procEvents"]["cursor"]))
    return cursors


async def _restart(live: Live, times: int = 1) -> None:
    for _ in range(times):
        await live.scheduler.control(JOB, InstanceAction.RESTART)


async def _subscribed(live: Live, sockets: list[ClientConnection]) -> None:
    """Every socket's subscription is live: restart until each has an event, drain them."""
    async with asyncio.timeout(DEADLINE):
        pending = list(sockets)
        while pending:
            await _restart(live)
            for ws in list(pending):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.5):
                        await _frames(ws, 1)
                    pending.remove(ws)
    for ws in sockets:  # what the last restarts sent
        while True:
            try:
                async with asyncio.timeout(1.0):
                    await _frames(ws, 1)
            except TimeoutError:
                break


async def test_a_group_gets_the_same_bytes_rendered_once_per_event(live: Live) -> None:
    variables = {"app": "hello", "proc": "jobs"}
    async with (
        _socket(live.url, variables) as a,
        _socket(live.url, variables) as b,
        _socket(live.url, variables) as c,
    ):
        await _subscribed(live, [a, b, c])
        before = live.renderer.executions
        await _restart(live, 3)  # six instance events
        got = [await _frames(ws, 6) for ws in (a, b, c)]
        assert live.renderer.executions - before == 6
    assert got[0] == got[1] == got[2]
    cursors = _cursors(got[0])
    assert cursors == sorted(set(cursors))
    # The frame is what Strawberry itself would have sent for the same result.
    message = json.loads(got[0][0])
    assert got[0][0] == json.dumps(message, separators=(",", ":"))
    assert list(message) == ["id", "type", "payload"]


async def test_different_documents_and_variables_are_rendered_apart(live: Live) -> None:
    other_query = WATCH.replace("proc { name numInstances }", "proc { name }")
    async with (
        _socket(live.url, {"app": "hello", "proc": "jobs"}) as full,
        _socket(live.url, {"app": "hello", "proc": "jobs"}, query=other_query) as short,
    ):
        await _subscribed(live, [full, short])
        before = live.renderer.executions
        await _restart(live)
        (full_frame, _), (short_frame, _) = await _frames(full, 2), await _frames(short, 2)
        assert live.renderer.executions - before == 4
    full_proc = json.loads(full_frame)["payload"]["data"]["procEvents"]["proc"]
    short_proc = json.loads(short_frame)["payload"]["data"]["procEvents"]["proc"]
    assert full_proc == {"name": "jobs", "numInstances": 2}
    assert short_proc == {"name": "jobs"}


async def test_resuming_with_after_gets_every_event_once_in_order(live: Live) -> None:
    variables = {"app": "hello", "proc": "jobs"}
    async with _socket(live.url, variables) as first:
        await _subscribed(live, [first])
        await _restart(live, 5)
        seen = _cursors(await _frames(first, 10))
        resume_from = seen[3]
        # Events keep coming while the second socket replays the log and goes live.
        publishing = asyncio.create_task(_restart(live, 10))
        async with _socket(live.url, {**variables, "after": str(resume_from)}) as second:
            await publishing
            later = _cursors(await _frames(first, 20))
            resumed = _cursors(await _frames(second, 6 + 20))
    assert resumed == seen[4:] + later
    assert resumed == sorted(set(resumed))


def _tiny_receive_buffer(url: str) -> socket.socket:
    """A connected socket whose receive window is small, so that the server's buffers fill
    after a few frames once the client stops reading."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.setblocking(False)
    return sock


# Ten aliases of the app's lain.yaml make each frame a few kilobytes.
BULKY = (
    "subscription($app: String!, $proc: String!) { procEvents(app: $app, proc: $proc) "
    "{ cursor " + " ".join(f"a{n}: app {{ release {{ lainYaml }} }}" for n in range(10)) + " } }"
)


async def test_a_socket_that_stops_reading_is_closed_and_the_others_keep_receiving(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="server.fanout")
    variables = {"app": "hello", "proc": "jobs"}
    async with (
        _socket(live.url, variables, query=BULKY, compression=None) as reader,
        _socket(
            live.url,
            variables,
            query=BULKY,
            compression=None,
            max_queue=1,  # the client library stops reading the socket after one frame
            ping_interval=None,  # nor could it answer its own pings' pongs
            sock=_tiny_receive_buffer(live.url),
        ) as stalled,
    ):
        await _subscribed(live, [reader, stalled])
        # Ten events at a time, each read by the reader before the next ten: the stalled
        # socket's backlog grows until its queue overflows.
        received: list[str] = []
        async with asyncio.timeout(DEADLINE * 2):
            while f"closing a websocket with {SLOW_SUBSCRIBER_CLOSE_CODE}" not in caplog.text:
                await _restart(live, 5)
                received += await _frames(reader, 10)
        await _restart(live, 5)  # and after the close, the reader still gets events
        received += await _frames(reader, 10)
        cursors = _cursors(received)
        assert cursors == sorted(set(cursors))
        # The stalled client, reading at last: what was sent before the close, in order,
        # then the close with its code.
        late, code = await _read_until_closed(stalled)
    assert code == SLOW_SUBSCRIBER_CLOSE_CODE
    assert late == cursors[: len(late)]
    assert len(late) < len(cursors)


async def _read_until_closed(ws: ClientConnection) -> tuple[list[int], int | None]:
    """The cursors of the events still to read, and the close code that followed them."""
    late: list[int] = []
    async with asyncio.timeout(DEADLINE):
        try:
            while True:
                message = json.loads(await ws.recv())
                if message["type"] == "next":
                    late.append(int(message["payload"]["data"]["procEvents"]["cursor"]))
        except ConnectionClosed as closed:
            return late, closed.rcvd.code if closed.rcvd is not None else None
