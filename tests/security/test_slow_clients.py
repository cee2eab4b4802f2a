"""Slow clients cannot hold the console (issue 12): a real `lain-console serve` closes
connections that do not finish their headers in time, bounds how many it keeps, and
answers /healthz while 200 connections trickle their headers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from tests.live import free_port, stop_process

_REPO = Path(__file__).resolve().parents[2]
HEADER_TIMEOUT = 2
DEADLINE = 30.0


@pytest.fixture
def console(tmp_path: Path) -> Iterator[str]:
    """`lain-console serve` on a fresh data dir; its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAIN_CONSOLE_")}
    env |= {
        "LAIN_CONSOLE_DATA_DIR": str(tmp_path / "data"),
        "LAIN_CONSOLE_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "LAIN_CONSOLE_MAX_CONNECTIONS": "300",
        "LAIN_CONSOLE_RECONCILE_INTERVAL": "0",
        "LAIN_CONSOLE_LOG_LEVEL": "ERROR",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
        env=env,
        cwd=_REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


async def _healthz(url: str) -> int:
    async with httpx.AsyncClient(timeout=5) as client:
        return (await client.get(f"{url}/healthz")).status_code


async def _until_healthy(url: str) -> None:
    async with asyncio.timeout(DEADLINE):
        while True:
            with contextlib.suppress(httpx.TransportError):
                if await _healthz(url) == 200:
                    return
            await asyncio.sleep(0.1)


class _Trickler:
    """A connection that sends a request's headers one byte at a time, never finishing."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.closed_by_server = asyncio.Event()

    async def run(self, first: bytes) -> None:
        try:
            self.writer.write(first)
            while True:
                await self.writer.drain()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.5):
                        if await self.reader.read(1024) == b"":
                            break
                self.writer.write(b"X")
        except (ConnectionError, OSError):
            pass
        self.closed_by_server.set()


@contextlib.asynccontextmanager
async def _slow_connections(url: str, count: int, first: bytes) -> AsyncIterator[list[_Trickler]]:
    port = int(url.rsplit(":", 1)[1])
    tricklers = []
    tasks = []
    try:
        for _ in range(count):
            trickler = _Trickler(*await asyncio.open_connection("127.0.0.1", port))
            tricklers.append(trickler)
            tasks.append(asyncio.create_task(trickler.run(first)))
        yield tricklers
    finally:
        for task in tasks:
            task.cancel()
        for trickler in tricklers:
            trickler.writer.close()
        await asyncio.gather(*tasks, return_exceptions=True)


REQUEST_START = b"GET /healthz HTTP/1.1\r\nHost: console\r\nX-Slow: "


async def _all_closed_by_the_server(slow: list[_Trickler]) -> None:
    async with asyncio.timeout(HEADER_TIMEOUT + DEADLINE):
        await asyncio.gather(*(trickler.closed_by_server.wait() for trickler in slow))


async def test_healthz_answers_while_200_connections_trickle_headers(console: str) -> None:
    await _until_healthy(console)
    async with _slow_connections(console, 200, REQUEST_START) as slow:
        assert await _healthz(console) == 200
        # ... and the server lets none of them hold on beyond the header timeout.
        await _all_closed_by_the_server(slow)
    assert await _healthz(console) == 200


async def test_connections_beyond_the_bound_get_503_until_the_slow_ones_are_dropped(
    console: str,
) -> None:
    await _until_healthy(console)
    async with _slow_connections(console, 300, REQUEST_START) as slow:
        # uvicorn answers requests on connections beyond limit_concurrency with 503.
        assert await _healthz(console) == 503
        await _all_closed_by_the_server(slow)
        assert await _healthz(console) == 200


async def test_a_websocket_outlives_the_header_timeout(console: str) -> None:
    await _until_healthy(console)
    url = console.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        # The header deadline has to pass for this test to mean anything.
        await asyncio.sleep(HEADER_TIMEOUT + 1)
        await ws.send(json.dumps({"type": "ping"}))
        async with asyncio.timeout(DEADLINE):
            assert json.loads(await ws.recv())["type"] == "pong"
