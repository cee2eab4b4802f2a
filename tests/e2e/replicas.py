"""Real `lain-console serve` processes sharing one PostgreSQL database and one (fake) Nomad.

Each console logs to a file of its own, which the tests read to learn who leads. Every
process is ended by its own pid when the block ends, also when a test fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.conftest import TEST_DATABASE_URL
from tests.fakes.nomad_server import FakeNomadServer
from tests.live import free_port
from tests.releases import V1, two_proc_yaml

__all__ = [
    "LEADS",
    "PUBLISH",
    "Console",
    "Consoles",
    "call",
    "consoles",
    "deploy",
    "needs_postgresql",
    "nomad_consoles",
    "registered",
    "scale",
    "settled",
    "shared_nomad",
    "wait_for",
]

LEADS = "this console leads"
PUBLISH = (
    "mutation($y: String!, $v: String!) { publishRelease(input: "
    '{app: "hello", metaVersion: $v, lainYaml: $y}) { errors { code } } }'
)

needs_postgresql = pytest.mark.skipif(
    not TEST_DATABASE_URL.startswith("postgresql"),
    reason="replicas need PostgreSQL: set LAIN_CONSOLE_TEST_DATABASE_URL to a "
    "postgresql+asyncpg:// URL (CI does)",
)
_READY_SECONDS = 60.0


@dataclass
class Console:
    name: str
    url: str
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def leads(self) -> bool:
        return LEADS in self.output

    def kill(self) -> None:
        """SIGKILL: no shutdown at all, as when the machine under it dies."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@dataclass
class Consoles:
    """Starts consoles with one environment; remembers them to stop them all."""

    root: Path
    environ: dict[str, str]
    started: list[Console] = field(default_factory=list)

    async def start(self, name: str, **extra: str) -> Console:
        data_dir = self.root / name
        data_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        log = self.root / f"{name}-{len(self.started)}.log"
        environ = {
            **os.environ,
            **self.environ,
            "LAIN_CONSOLE_DATA_DIR": str(data_dir),
            "LAIN_CONSOLE_PORT": str(port),
            **extra,
        }
        with log.open("wb") as out:
            process = await anyio.to_thread.run_sync(
                partial(
                    subprocess.Popen,
                    [sys.executable, "-m", "server.cli", "serve"],
                    env=environ,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        console = Console(name, f"http://127.0.0.1:{port}", log, process)
        self.started.append(console)
        await _ready(console)
        return console

    def stop_all(self) -> None:
        for console in self.started:
            console.stop()


async def _ready(console: Console) -> None:
    deadline = time.monotonic() + _READY_SECONDS
    async with httpx.AsyncClient() as client:
        while True:
            if console.process.poll() is not None:
                raise RuntimeError(f"{console.name} exited:\n{console.output}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(console.url + "/healthz", timeout=2)).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{console.name} did not start:\n{console.output}")
            await asyncio.sleep(0.1)


@contextlib.contextmanager
def shared_nomad() -> Iterator[FakeNomadServer]:
    """One fake Nomad for all the consoles, stepping on its own like a real cluster."""
    server = FakeNomadServer(auto_settle=0.05).start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def consoles(root: Path, environ: dict[str, str]) -> Iterator[Consoles]:
    group = Consoles(root, environ)
    try:
        yield group
    finally:
        group.stop_all()


@contextlib.contextmanager
def nomad_consoles(
    root: Path, database: str, nomad: FakeNomadServer, **settings: str
) -> Iterator[Consoles]:
    """Consoles on `database`, driving `nomad`, with these LAIN_CONSOLE_* `settings` more."""
    environ = {
        "LAIN_CONSOLE_DATABASE_URL": database,
        "LAIN_CONSOLE_BACKEND": "nomad",
        "NOMAD_ADDR": nomad.url,
        "LAIN_CONSOLE_LOG_LEVEL": "INFO",
        **{f"LAIN_CONSOLE_{name}": value for name, value in settings.items()},
    }
    with consoles(root, environ) as started:
        yield started


async def wait_for(
    condition: Callable[[], Awaitable[bool]], *, seconds: float = 30.0, every: float = 0.1
) -> float:
    """Poll `condition()` until true; returns the seconds it took."""
    start = time.monotonic()
    while True:
        if await condition():
            return time.monotonic() - start
        if time.monotonic() - start > seconds:
            raise TimeoutError(f"not true after {seconds} s")
        await asyncio.sleep(every)


# What every replica test does to the app `hello` through GraphQL.


async def call(http: httpx.AsyncClient, console: Console, query: str, **variables: Any) -> Any:
    response = await http.post(
        console.url + "/graphql", json={"query": query, "variables": variables}
    )
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


async def registered(http: httpx.AsyncClient, console: Console) -> None:
    await call(
        http, console, 'mutation { registerRepo(input: {name: "hello"}) { errors { code } } }'
    )
    await call(http, console, PUBLISH, y=two_proc_yaml(), v=V1)


async def deploy(http: httpx.AsyncClient, console: Console) -> list[dict[str, Any]]:
    data = await call(
        http,
        console,
        'mutation { deployApp(input: {name: "hello"}) { errors { code message } } }',
    )
    errors: list[dict[str, Any]] = data["deployApp"]["errors"]
    return errors


async def scale(http: httpx.AsyncClient, console: Console, proc: str, n: int) -> list[Any]:
    data = await call(
        http,
        console,
        "mutation($p: String!, $n: Int!) { scaleProc(input: "
        '{app: "hello", proc: $p, numInstances: $n}) { errors { code message } } }',
        p=proc,
        n=n,
    )
    errors: list[Any] = data["scaleProc"]["errors"]
    return errors


async def settled(http: httpx.AsyncClient, console: Console) -> bool:
    """Whether no proc is rolling out as `console` sees it: a proc whose Nomad deployment
    is under way refuses other operations (CONFLICT), as it should."""
    data = await call(http, console, '{ app(name: "hello") { procs { rollout } } }')
    return all(proc["rollout"] != "RUNNING" for proc in data["app"]["procs"])
