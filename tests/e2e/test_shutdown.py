"""Graceful shutdown of `lain-console serve`: websockets get a close frame, the process exits
cleanly, and the local backend's processes stay or stop as configured."""

from __future__ import annotations

import asyncio
import json
import os
import signal

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.e2e.console import Console, alive, deploy_sleeper, until

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("LAIN_CONSOLE_TEST_DATABASE_URL")),
    reason="runs the README's server on its default SQLite database",
)


async def _closed(ws: ClientConnection) -> ConnectionClosed:
    async with asyncio.timeout(20):
        while True:
            try:
                await ws.recv()
            except ConnectionClosed as closed:
                return closed


@pytest.mark.parametrize("stop_on_exit", [False, True], ids=["processes-stay", "processes-stop"])
async def test_sigterm_closes_websockets_and_handles_processes_as_configured(
    console: Console, stop_on_exit: bool
) -> None:
    console.extra_env["LAIN_CONSOLE_LOCAL_STOP_ON_EXIT"] = "true" if stop_on_exit else "false"
    console.start()
    pid = await deploy_sleeper(console)
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
        await until(lambda: not alive(pid))
    else:
        assert alive(pid)
    # The `console` fixture kills the processes that stayed, also when an assertion failed.
