"""A real server on a loopback port, and clients that talk to it over HTTP and websockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect

from tests.releases import V1, two_proc_yaml

RECEIVE_TIMEOUT = 30.0


def stop_process(process: subprocess.Popen[Any], grace: float = 15.0) -> None:
    """SIGTERM a child process, SIGKILL it after `grace` seconds; it is reaped either way."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def serve(app: Starlette, **options: Any) -> AsyncIterator[str]:
    """Run `app` under uvicorn on 127.0.0.1 until the block ends; yields its base URL.

    `options` are more uvicorn.Config arguments: `uvicorn_options(settings)` runs it as
    `lain-console serve` does.
    """
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, **{"log_config": None, "lifespan": "on", **options}
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:
                if task.done():
                    task.result()  # raises what stopped the server from starting
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


class GraphQLHttp:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.client.post("/graphql", json={"query": query, "variables": variables})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]


async def register_hello(gql: GraphQLHttp) -> None:
    """Register the app hello and publish its release V1 (two procs), through GraphQL."""
    await gql('mutation { registerRepo(input: {name: "hello"}) { errors { code } } }')
    await gql(
        "mutation($y: String!, $v: String!) { publishRelease(input: "
        '{app: "hello", metaVersion: $v, lainYaml: $y}) { errors { code } } }',
        y=two_proc_yaml(),
        v=V1,
    )


class Subscriber:
    """One graphql-transport-ws (or legacy graphql-ws) subscription."""

    def __init__(self, ws: ClientConnection, protocol: str) -> None:
        self.ws = ws
        self.protocol = protocol

    async def receive(self) -> dict[str, Any]:
        async with asyncio.timeout(RECEIVE_TIMEOUT):
            while True:
                message = json.loads(await self.ws.recv())
                if message["type"] in ("ka", "ping", "pong"):
                    continue
                return message

    async def next_event(self) -> dict[str, Any]:
        message = await self.receive()
        assert message["type"] in ("next", "data"), message
        payload: dict[str, Any] = message["payload"]
        assert "errors" not in payload, payload
        return payload["data"]


@contextlib.asynccontextmanager
async def subscribe(
    base_url: str,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    protocol: str = "graphql-transport-ws",
    init_payload: dict[str, Any] | None = None,
) -> AsyncIterator[Subscriber]:
    url = base_url.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        subscriber = Subscriber(ws, protocol)
        await ws.send(json.dumps({"type": "connection_init", "payload": init_payload or {}}))
        assert (await subscriber.receive())["type"] == "connection_ack"
        start = "subscribe" if protocol == "graphql-transport-ws" else "start"
        payload = {"query": query, "variables": variables or {}}
        await ws.send(json.dumps({"id": "1", "type": start, "payload": payload}))
        yield subscriber
