"""Apps with real processes on the local backend, for the benchmarks that need them.

`local_console` serves the product with its local backend over a fresh data dir (its own
process, `bench.serve local`), registers, publishes and deploys apps through the REST API
as LAIN clients do, waits until every instance runs (and passes its health check), and at
the end stops the console and kills every process working in the data dir, also when the
block fails.

The apps are tiny: a web proc answering its HTTP health check from a socket loop, and
optionally a worker that sleeps, both under the test app interpreter with `-S` (no site
packages: a fast start and about 8 MB each).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.processes import Served, server
from tests.app_python import APP_PYTHON
from tests.processes import kill_processes_in, processes_in
from tests.releases import meta_version

__all__ = [
    "WEB_SOURCE",
    "LocalApps",
    "app_name",
    "deploy_all",
    "local_console",
    "tiny_yaml",
    "wait_running",
]

# Answers every connection with a 200 and closes it: enough for the health check.
WEB_SOURCE = (
    "import os, socket\n"
    "s = socket.socket()\n"
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('127.0.0.1', int(os.environ['PORT'])))\n"
    "s.listen(64)\n"
    "while True:\n"
    "    c, _ = s.accept()\n"
    "    c.recv(4096)\n"
    "    c.sendall(b'HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n'\n"
    "              b'Connection: close\\r\\n\\r\\nok')\n"
    "    c.close()\n"
)
_WORKER_SOURCE = "import time\nwhile True:\n    time.sleep(3600)\n"
_DEADLINE = 300.0  # seconds for every instance to come up (hundreds start at once)


def app_name(index: int) -> str:
    return f"tiny{index:04d}"


def tiny_yaml(app: str, *, web: int, workers: int = 0) -> str:
    """`web` instances with an HTTP health check and a port; `workers` sleeping ones."""
    yaml = {
        "appname": app,
        "web": {
            "cmd": [APP_PYTHON, "-S", "-c", WEB_SOURCE],
            "port": 8080,
            "num_instances": web,
            "memory": "128m",
            "healthcheck": "/health",
        },
    }
    if workers:
        yaml["worker"] = {
            "cmd": [APP_PYTHON, "-S", "-c", _WORKER_SOURCE],
            "num_instances": workers,
            "memory": "128m",
        }
    return json.dumps(yaml)  # YAML is a superset of JSON


@dataclass(frozen=True, slots=True)
class LocalApps:
    served: Served
    data_dir: Path
    apps: tuple[str, ...]

    def processes(self) -> int:
        """App processes alive now (every process working inside the data dir)."""
        return len(processes_in(self.data_dir))


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> None:
    response = await client.post(path, json=body)
    if response.status_code >= 300:
        raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:200]}")


async def deploy_all(url: str, apps: dict[str, str]) -> None:
    """Register, publish and deploy each app (name -> lain.yaml) through LAIN's REST API."""
    version = meta_version(1_700_000_000, "bench-local")
    async with httpx.AsyncClient(base_url=url, timeout=120.0) as client:
        for app, yaml in apps.items():
            await _post(client, "/api/v1/repos/", {"appname": app})
            await _post(
                client,
                f"/api/v1/repos/{app}/versions/",
                {"meta_version": version, "lain_yaml": yaml},
            )
            await _post(client, "/api/v1/apps/", {"appname": app})


async def wait_running(url: str, apps: tuple[str, ...], *, deadline: float = _DEADLINE) -> None:
    """Until every wanted instance of every app runs and passes its health check."""
    query = (
        "query($after: String) { apps(first: 100, after: $after) { pageInfo { hasNextPage "
        "endCursor } nodes { name procs { numInstances instances { status healthy } } } } }"
    )
    wanted = set(apps)
    give_up = time.monotonic() + deadline
    async with httpx.AsyncClient(base_url=url, timeout=120.0) as client:
        while True:
            ready: set[str] = set()
            after = None
            while True:
                response = await client.post(
                    "/graphql", json={"query": query, "variables": {"after": after}}
                )
                page = response.json()["data"]["apps"]
                for node in page["nodes"]:
                    if all(_up(proc) for proc in node["procs"]):
                        ready.add(node["name"])
                if not page["pageInfo"]["hasNextPage"]:
                    break
                after = page["pageInfo"]["endCursor"]
            if wanted <= ready:
                return
            if time.monotonic() > give_up:
                raise RuntimeError(f"{len(wanted - ready)} apps did not come up in {deadline}s")
            await asyncio.sleep(0.5)


def _up(proc: dict[str, Any]) -> bool:
    instances = proc["instances"]
    return len(instances) == proc["numInstances"] and all(
        i["status"] == "RUNNING" and i["healthy"] is not False for i in instances
    )


@contextlib.contextmanager
def local_console(workdir: Path, name: str, apps: dict[str, str]) -> Iterator[LocalApps]:
    """The product on the local backend with `apps` deployed and up; everything it started
    is killed when the block ends."""
    data_dir = workdir / f"local-{name}"
    _clean(data_dir)
    try:
        with server("local", data_dir=data_dir) as served:
            asyncio.run(_deploy_and_wait(served.url, apps))
            yield LocalApps(served, data_dir, tuple(apps))
    finally:
        kill_processes_in(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


async def _deploy_and_wait(url: str, apps: dict[str, str]) -> None:
    await deploy_all(url, apps)
    await wait_running(url, tuple(apps))


def _clean(data_dir: Path) -> None:
    if data_dir.exists():
        kill_processes_in(data_dir)  # a run that was killed itself may have left some
        shutil.rmtree(data_dir)
