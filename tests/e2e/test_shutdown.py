"""Graceful shutdown of `lain-console serve`: websockets get a close frame, the process exits
cleanly, and the local backend's processes stay or stop as configured."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.e2e.console import Console, graphql, healthy, until
from tests.releases import V1

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("LAIN_CONSOLE_TEST_DATABASE_URL")),
    reason="runs the README's server on its default SQLite database",
)

YAML = f"""\
appname: hello
worker:
  cmd: [{sys.executable}, -c, "import time; time.sleep(3600)"]
  memory: 256m
"""


async def _closed(ws: ClientConnection) -> ConnectionClosed:
    async with asyncio.timeout(20):
        while True:
            try:
                await ws.recv()
            except ConnectionClosed as closed:
                return closed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _deployed_pid(console: Console) -> int:
    async with httpx.AsyncClient(base_url=console.url, timeout=30) as client:
        await until(lambda: healthy(client))
        await graphql(
            client, 'mutation { registerRepo(input: {name: "hello"}) { errors { code } } }'
        )
        await graphql(
            client,
            "mutation($y: String!) { publishRelease(input: "
            f'{{app: "hello", metaVersion: "{V1}", lainYaml: $y}}) {{ errors {{ code }} }} }}',
            y=YAML,
        )
        await graphql(client, 'mutation { deployApp(input: {name: "hello"}) { errors { code } } }')
        query = '{ app(name: "hello") { procs { instances { status } } } }'

        async def running() -> bool:
            procs = (await graphql(client, query))["app"]["procs"]
            return procs[0]["instances"] == [{"status": "RUNNING"}]

        await until(running)
    pids = [
        int(p.read_text().split()[0])
        for p in (console.data_dir / "local" / "run").rglob("*")
        if p.is_file() and p.read_text().split() and p.read_text().split()[0].isdigit()
    ]
    assert pids, "the local backend recorded no process"
    return pids[0]


@pytest.mark.parametrize("stop_on_exit", [False, True], ids=["processes-stay", "processes-stop"])
async def test_sigterm_closes_websockets_and_handles_processes_as_configured(
    console: Console, stop_on_exit: bool
) -> None:
    console.extra_env["LAIN_CONSOLE_LOCAL_STOP_ON_EXIT"] = "true" if stop_on_exit else "false"
    console.start()
    pid = await _deployed_pid(console)
    url = console.url.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        subscription = 'subscription { appEvents(name: "hello") { cursor } }'
        await ws.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"query": subscription}})
        )
        assert console.process is not None
        console.process.send_signal(signal.SIGTERM)
        closed = await _closed(ws)
    assert closed.rcvd is not None, "the server closed without a close frame"
    assert closed.rcvd.code in (1001, 1012)
    # uvicorn re-raises the signal once it has shut down, so the exit status is SIGTERM's.
    assert await asyncio.to_thread(console.process.wait, 20) in (0, -signal.SIGTERM)
    assert "lain-console stopped" in console.log_text()
    if stop_on_exit:
        await until(lambda: not _alive(pid))
    else:
        assert _alive(pid)
    # The `console` fixture kills the processes that stayed, also when an assertion failed.
