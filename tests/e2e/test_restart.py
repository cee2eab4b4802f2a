"""Killing the console mid-deploy and starting it again converges to the desired state."""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live import free_port
from tests.releases import V1

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("LAIN_CONSOLE_TEST_DATABASE_URL")),
    reason="runs the README's server on its default SQLite database; the same on PostgreSQL "
    "adds nothing the reconciler tests do not cover",
)

PROCS = 40  # applied one after another: a deploy long enough to be killed in the middle


def lain_yaml() -> str:
    workers = "".join(
        f"worker.w{n}:\n  cmd: [{sys.executable}, -c, 'import time; time.sleep(3600)']\n"
        "  memory: 256m\n"
        for n in range(PROCS)
    )
    return f"appname: hello\n{workers}"


class Console:
    """`lain-console serve` as a process, on a data dir that outlives it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.extra_env: dict[str, str] = {}

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LAIN_CONSOLE_")}
        env |= self.extra_env | {
            "LAIN_CONSOLE_DATA_DIR": str(self.data_dir),
            "LAIN_CONSOLE_RECONCILE_INTERVAL": "1",
        }
        with self._log.open("ab") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "serve", "--port", str(self.port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    @property
    def _log(self) -> Path:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        return self.data_dir.parent / "console.log"

    def log_text(self) -> str:
        return self._log.read_text(errors="replace")

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

    def jobs_on_disk(self) -> int:
        """How many jobs the local backend has recorded (it writes each before starting it)."""
        return len(list((self.data_dir / "local" / "jobs").glob("*.json")))

    def app_status(self) -> str | None:
        with sqlite3.connect(self.data_dir / "lain-console.db") as db:
            row = db.execute("SELECT status FROM apps WHERE name = 'hello'").fetchone()
        return row[0] if row else None


DEADLINE = 60.0


async def _until(check: Callable[[], Any]) -> Any:
    """Poll `check` (sync or async) until it returns something true, for DEADLINE at most."""
    async with asyncio.timeout(DEADLINE):
        while True:
            try:
                result = check()
                if inspect.isawaitable(result):
                    result = await result
            except (httpx.TransportError, sqlite3.Error):
                result = None
            if result:
                return result
            await asyncio.sleep(0.01)


async def _graphql(client: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    body: dict[str, Any] = response.json()
    return body["data"]


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[Console]:
    console = Console(tmp_path / "data")
    try:
        yield console
    finally:
        # Undeploy through a live console so that no app process outlives the test.
        if console.process is None or console.process.poll() is not None:
            console.start()
        async with httpx.AsyncClient(base_url=console.url, timeout=30) as client:
            await _until(lambda: _health(client))
            await client.post(
                "/graphql",
                json={
                    "query": 'mutation { undeployApp(input: {name: "hello"}) { errors { code } } }'
                },
            )
        console.stop()


async def _health(client: httpx.AsyncClient) -> bool:
    return (await client.get("/healthz")).status_code == 200


async def test_killed_mid_deploy_then_restarted_converges(console: Console) -> None:
    console.start()
    async with httpx.AsyncClient(base_url=console.url, timeout=60) as client:
        await _until(lambda: _health(client))
        await _graphql(
            client, 'mutation { registerRepo(input: {name: "hello"}) { errors { code } } }'
        )
        await _graphql(
            client,
            "mutation($y: String!) { publishRelease(input: "
            f'{{app: "hello", metaVersion: "{V1}", lainYaml: $y}}) {{ errors {{ code }} }} }}',
            y=lain_yaml(),
        )
        deploy_app = 'mutation { deployApp(input: {name: "hello"}) { errors { code } } }'
        deploy = asyncio.create_task(client.post("/graphql", json={"query": deploy_app}))
        await _until(lambda: console.app_status() == "deploying")
        console.kill()
        with pytest.raises(httpx.TransportError):
            await deploy

    assert console.app_status() == "deploying"  # the kill caught the deploy in flight
    assert console.jobs_on_disk() < PROCS  # ... before it had applied every proc
    console.start()
    query = '{ app(name: "hello") { status procs { name instances { status } } } }'
    async with httpx.AsyncClient(base_url=console.url, timeout=30) as client:
        await _until(lambda: _health(client))

        async def converged() -> bool:
            app = (await _graphql(client, query))["app"]
            statuses = {p["name"]: [i["status"] for i in p["instances"]] for p in app["procs"]}
            expected = {f"w{n}": ["RUNNING"] for n in range(PROCS)}
            return app["status"] == "DEPLOYED" and statuses == expected

        await _until(converged)
        audit = await _graphql(
            client, '{ app(name: "hello") { auditLog(first: 5) { nodes { user operation } } } }'
        )
    operations = [(e["user"], e["operation"]) for e in audit["app"]["auditLog"]["nodes"]]
    assert ("system", "RECONCILE") in operations
