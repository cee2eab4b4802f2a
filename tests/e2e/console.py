"""`lain-console serve` as a real process, as `make serve` runs it, and ways to wait on it."""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.app_python import APP_PYTHON
from tests.live import free_port
from tests.processes import kill_processes_in, processes_in
from tests.releases import V1

__all__ = [
    "DEADLINE",
    "Console",
    "alive",
    "deploy_sleeper",
    "graphql",
    "healthy",
    "publish_hello",
    "until",
]

DEADLINE = 60.0

# The script pip installs beside the interpreter: what `make serve` runs.
_COMMAND = Path(sys.executable).with_name("lain-console")


class Console:
    """`lain-console serve` on a data dir that outlives it.

    With `cwd`, the console runs in that directory and is given the data dir relative to it
    (left unset when it is `./.lain-console`, the default), as `make serve` starts it.
    """

    def __init__(self, data_dir: Path, *, cwd: Path | None = None) -> None:
        self.data_dir = data_dir
        self.cwd = cwd
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.extra_env: dict[str, str] = {"LAIN_CONSOLE_RECONCILE_INTERVAL": "1"}

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LAIN_CONSOLE_")}
        env |= self.extra_env
        if self.cwd is None:
            env["LAIN_CONSOLE_DATA_DIR"] = str(self.data_dir)
        elif self.data_dir != self.cwd / ".lain-console":
            env["LAIN_CONSOLE_DATA_DIR"] = os.path.relpath(self.data_dir, self.cwd)
        if self.cwd is not None:
            self.cwd.mkdir(parents=True, exist_ok=True)
        return env

    def start(self) -> None:
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                [str(_COMMAND), "serve", "--port", str(self.port)],
                env=self._env(),
                cwd=self.cwd,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    def run_expecting_exit(self, *, port: int | None = None) -> subprocess.CompletedProcess[str]:
        """Serve on this data dir and wait for the console to give up (blocking, 30 s at
        most: a console that serves instead fails the test by the timeout, and is killed)."""
        return subprocess.run(
            [str(_COMMAND), "serve", "--port", str(port or self.port)],
            env=self._env(),
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=30,
        )

    @property
    def log_path(self) -> Path:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        return self.data_dir.parent / "console.log"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def close(self) -> None:
        """Stop the console and kill every app process it left: a test's teardown."""
        try:
            self.stop()
        finally:
            kill_processes_in(self.data_dir)

    def jobs_on_disk(self) -> int:
        """How many jobs the local backend has recorded (it writes each before starting it)."""
        return len(list((self.data_dir / "local" / "jobs").glob("*.json")))

    def app_status(self) -> str | None:
        with sqlite3.connect(self.data_dir / "lain-console.db") as db:
            row = db.execute("SELECT status FROM apps WHERE name = 'hello'").fetchone()
        return row[0] if row else None


async def until(check: Callable[[], Any], deadline: float = DEADLINE) -> Any:
    """Poll `check` (sync or async) until it returns something true, for `deadline` at most."""
    async with asyncio.timeout(deadline):
        while True:
            try:
                result = check()
                if inspect.isawaitable(result):
                    result = await result
            except (httpx.TransportError, sqlite3.Error):
                result = None
            if result:
                return result
            await asyncio.sleep(0.05)


async def graphql(client: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    body: dict[str, Any] = response.json()
    return body["data"]


async def healthy(client: httpx.AsyncClient) -> bool:
    return (await client.get("/healthz")).status_code == 200


SLEEPER_YAML = f"""\
appname: hello
worker:
  cmd: [{APP_PYTHON}, -c, "import time; time.sleep(3600)"]
  memory: 256m
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def publish_hello(client: httpx.AsyncClient, lain_yaml: str) -> None:
    """Once the console answers: register `hello` and publish `lain_yaml` as its V1."""
    await until(lambda: healthy(client))
    await graphql(client, 'mutation { registerRepo(input: {name: "hello"}) { errors { code } } }')
    await graphql(
        client,
        "mutation($y: String!) { publishRelease(input: "
        f'{{app: "hello", metaVersion: "{V1}", lainYaml: $y}}) {{ errors {{ code }} }} }}',
        y=lain_yaml,
    )


async def deploy_sleeper(console: Console) -> int:
    """Register, publish and deploy `hello` with one sleeping worker; returns its pid."""
    async with httpx.AsyncClient(base_url=console.url, timeout=30) as client:
        await publish_hello(client, SLEEPER_YAML)
        await graphql(client, 'mutation { deployApp(input: {name: "hello"}) { errors { code } } }')
        query = '{ app(name: "hello") { procs { instances { status } } } }'

        async def running() -> bool:
            procs = (await graphql(client, query))["app"]["procs"]
            return procs[0]["instances"] == [{"status": "RUNNING"}]

        await until(running)
    (pid,) = processes_in(console.data_dir)
    return pid
