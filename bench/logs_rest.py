"""The REST half of `bench.logs`: a real server process and `?follow=1` readers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from bench.report import percentile

__all__ = ["run"]

_META = "1528874349-6f8a0c1e2b3d4f5a6b7c8d9e0f1a2b3c4d5e6f70"
_TICKS = os.sysconf("SC_CLK_TCK")


def _lain_yaml(writer: str, rate: int) -> str:
    body = "\n".join("      " + line for line in writer.strip("\n").splitlines())
    return f"""appname: bench
worker.writer:
  cmd:
    - {sys.executable}
    - -c
    - |
{body}
    - "{rate}"
  memory: 256m
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


@contextlib.asynccontextmanager
async def _server(data_dir: Path) -> AsyncIterator[tuple[str, int]]:
    port = _free_port()
    env = {
        **os.environ,
        "LAIN_CONSOLE_DATA_DIR": str(data_dir),
        "LAIN_CONSOLE_LOG_LEVEL": "WARNING",
        "LAIN_CONSOLE_LOCAL_STOP_ON_EXIT": "true",
        "LAIN_CONSOLE_RATE_LIMIT_PER_MINUTE": "0",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from server.cli import main; main()",
        "serve",
        "--port",
        str(port),
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            for _ in range(300):
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)


async def _deploy(client: httpx.AsyncClient, writer: str, rate: int) -> None:
    steps = [
        ("/api/v1/repos/", {"appname": "bench"}),
        (
            "/api/v1/repos/bench/versions/",
            {"meta_version": _META, "lain_yaml": _lain_yaml(writer, rate)},
        ),
        ("/api/v1/apps/", {"appname": "bench"}),
    ]
    for path, body in steps:
        response = await client.post(path, json=body)
        response.raise_for_status()


async def _follow(
    client: httpx.AsyncClient, stop: asyncio.Event, latencies: list[float] | None
) -> int:
    """Lines seen; with `latencies`, each line's delay after its write time."""
    seen = 0
    url = "/api/v1/apps/bench/procs/writer/logs/?tail=0&follow=1"
    async with client.stream("GET", url, timeout=httpx.Timeout(5, read=None)) as response:
        if latencies is None:
            async for chunk in response.aiter_bytes():
                seen += chunk.count(b"\n")
                if stop.is_set():
                    break
            return seen
        async for line in response.aiter_lines():
            now = time.time_ns()
            parts = line.split(" ", 4)  # time, proc.instance, stream, written_ns, …
            if len(parts) > 3 and parts[3].isdigit():
                latencies.append((now - int(parts[3])) / 1e6)
                seen += 1
            if stop.is_set():
                break
    return seen


async def run(seconds: float, rate: int, followers: int, writer: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-logs-rest-") as data:
        async with (
            _server(Path(data)) as (url, pid),
            httpx.AsyncClient(base_url=url, timeout=30) as client,
        ):
            await _deploy(client, writer, rate)
            await asyncio.sleep(2.0)  # the writer starts
            stop = asyncio.Event()
            latencies: list[float] = []
            watched = asyncio.create_task(_follow(client, stop, latencies))
            others = [
                asyncio.create_task(_follow(client, stop, None)) for _ in range(followers - 1)
            ]
            await asyncio.sleep(1.0)  # every follower is connected
            count_before, cpu_before, wall_before = (
                len(latencies),
                _cpu_seconds(pid),
                time.monotonic(),
            )
            await asyncio.sleep(seconds)
            wall = time.monotonic() - wall_before
            cpu = _cpu_seconds(pid) - cpu_before
            window = latencies[count_before:]
            stop.set()
            for task in (watched, *others):
                task.cancel()
            await asyncio.gather(watched, *others, return_exceptions=True)
            await client.delete("/api/v1/apps/bench/")
    return {
        "lines/s seen": len(window) / wall,
        "p50 ms": percentile(window, 50),
        "p99 ms": percentile(window, 99),
        "cpu %": 100 * cpu / wall,
    }
