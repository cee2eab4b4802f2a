"""Part 4: deploy throughput. N apps are registered and published (not timed), then N
`deployApp` mutations are sent at once to the product running the Nomad backend against the
fake Nomad; afterwards the fake must hold exactly the expected jobs, each registered once."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.processes import cpu_seconds, python_module, server
from bench.report import Latencies, Table, verdict
from bench.seed import PROCS, app_name, lain_yaml
from store.migrate import upgrade
from tests.releases import meta_version

__all__ = ["DeployResult", "measure", "table"]

REGISTER = (
    "mutation R($input: RegisterRepoInput!) { registerRepo(input: $input) "
    "{ repo { name } errors { code message } } }"
)
PUBLISH = (
    "mutation P($input: PublishReleaseInput!) { publishRelease(input: $input) "
    "{ release { metaVersion } errors { code message } } }"
)
DEPLOY = (
    "mutation D($input: DeployAppInput!) { deployApp(input: $input) "
    "{ app { name status } errors { code message } } }"
)
LIST = (
    "query L($after: String) { apps(first: 100, after: $after) "
    "{ nodes { name status } pageInfo { hasNextPage endCursor } } }"
)
_SETUP_CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class DeployResult:
    apps: int
    seconds: float
    latencies: Latencies
    accepted: int
    errors: list[str]
    expected_jobs: int
    registered_once: int  # expected jobs the fake saw registered exactly once
    duplicates: int  # registrations beyond the first of a job
    lost: int  # expected jobs never registered
    unexpected: int  # registered jobs nobody asked for
    held_jobs: int  # jobs the fake holds at the end
    deployed_apps: int  # apps the product lists as DEPLOYED at the end
    cpu: dict[str, float]  # process -> CPU seconds per wall second during the deploys

    @property
    def rate(self) -> float:
        return self.apps / self.seconds if self.seconds else 0.0

    @property
    def exact(self) -> bool:
        return (
            self.duplicates == 0
            and self.lost == 0
            and self.unexpected == 0
            and self.held_jobs == self.expected_jobs
            and self.accepted == self.apps
        )


async def _mutate(client: httpx.AsyncClient, query: str, field: str, **values: Any) -> Any:
    response = await client.post("/graphql", json={"query": query, "variables": values})
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(f"{field}: {body['errors']}")
    return body["data"][field]


async def _setup(client: httpx.AsyncClient, names: list[str]) -> None:
    gate = asyncio.Semaphore(_SETUP_CONCURRENCY)
    version = meta_version(1_700_000_000, "bench")

    async def one(name: str) -> None:
        async with gate:
            for query, field, values in (
                (REGISTER, "registerRepo", {"name": name}),
                (
                    PUBLISH,
                    "publishRelease",
                    {"app": name, "metaVersion": version, "lainYaml": lain_yaml(name)},
                ),
            ):
                payload = await _mutate(client, query, field, input=values)
                if payload["errors"]:
                    raise RuntimeError(f"{field} {name}: {payload['errors']}")

    await asyncio.gather(*(one(name) for name in names))


async def _deploy_all(
    url: str, names: list[str], busy: dict[str, int]
) -> tuple[float, list[float], list[Any], dict[str, float]]:
    """Set up, then deploy every app at once; also how busy each process in `busy` (name to
    pid) was while the deploys ran, in CPU seconds per wall second."""
    limits = httpx.Limits(max_connections=len(names), max_keepalive_connections=len(names))
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=300.0) as client:
        await _setup(client, names)
        # Open every connection beforehand: the timed part is the mutations, not TCP setup.
        await asyncio.gather(*(client.get("/healthz") for _ in names))

        async def one(name: str) -> tuple[float, Any]:
            started = time.perf_counter()
            payload = await _mutate(client, DEPLOY, "deployApp", input={"name": name})
            return time.perf_counter() - started, payload

        before = {name: cpu_seconds(pid) for name, pid in busy.items()}
        before["load generator"] = time.process_time()
        started = time.perf_counter()
        done = await asyncio.gather(*(one(name) for name in names))
        seconds = time.perf_counter() - started
        after = {name: cpu_seconds(pid) for name, pid in busy.items()}
        after["load generator"] = time.process_time()
    cpu = {name: (after[name] - before[name]) / seconds for name in before}
    return seconds, [latency * 1000 for latency, _ in done], [payload for _, payload in done], cpu


async def _deployed(url: str) -> int:
    count, after = 0, None
    async with httpx.AsyncClient(base_url=url, timeout=60.0) as client:
        while True:
            response = await client.post(
                "/graphql", json={"query": LIST, "variables": {"after": after}}
            )
            page = response.json()["data"]["apps"]
            count += sum(1 for node in page["nodes"] if node["status"] == "DEPLOYED")
            if not page["pageInfo"]["hasNextPage"]:
                return count
            after = page["pageInfo"]["endCursor"]


def _report(nomad: subprocess.Popen[str]) -> dict[str, Any]:
    assert nomad.stdin is not None
    assert nomad.stdout is not None
    nomad.stdin.write("report\n")
    nomad.stdin.flush()
    found: dict[str, Any] = json.loads(nomad.stdout.readline())
    return found


def measure(workdir: Path, apps: int) -> DeployResult:
    data_dir = workdir / "deploy"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    upgrade(f"sqlite+aiosqlite:///{data_dir / 'lain-console.db'}")
    names = [app_name(index) for index in range(apps)]
    expected = {
        f"{name}.{proc.split('.')[0]}.{proc.split('.')[-1]}" for name in names for proc in PROCS
    }
    with python_module("bench.nomad", [], stdin=subprocess.PIPE, stdout=subprocess.PIPE) as nomad:
        assert nomad.stdout is not None
        nomad_url = json.loads(nomad.stdout.readline())["url"]
        with server("nomad", data_dir=data_dir, env={"NOMAD_ADDR": nomad_url}) as served:
            url = served.url
            print(
                f"  deploy: {apps} apps registered and published, deploying at once ...", flush=True
            )
            busy = {"lain-console": served.pid, "fake Nomad": nomad.pid}
            seconds, latencies, payloads, cpu = asyncio.run(_deploy_all(url, names, busy))
            deployed = asyncio.run(_deployed(url))
        report = _report(nomad)
    registered: dict[str, int] = report["registered"]
    errors = [json.dumps(p["errors"]) for p in payloads if p["errors"]]
    return DeployResult(
        apps=apps,
        seconds=seconds,
        latencies=Latencies(tuple(latencies)),
        accepted=sum(1 for p in payloads if not p["errors"] and p["app"] is not None),
        errors=errors[:5],
        expected_jobs=len(expected),
        registered_once=sum(1 for job in expected if registered.get(job) == 1),
        duplicates=sum(count - 1 for count in registered.values() if count > 1),
        lost=len(expected - set(registered)),
        unexpected=len(set(registered) - expected),
        held_jobs=len(set(report["jobs"]) & expected),
        deployed_apps=deployed,
        cpu=cpu,
    )


def table(result: DeployResult) -> Table:
    found = Table(
        "4. Deploy throughput: concurrent deployApp mutations, Nomad backend, fake Nomad",
        [
            "apps",
            "wall s",
            "mutations/s",
            "p50 ms",
            "p99 ms",
            "accepted",
            "jobs expected",
            "registered once",
            "duplicated",
            "lost",
            "held",
            "apps DEPLOYED",
            "verdict",
        ],
    )
    found.add(
        result.apps,
        result.seconds,
        result.rate,
        result.latencies.p50,
        result.latencies.p99,
        result.accepted,
        result.expected_jobs,
        result.registered_once,
        result.duplicates,
        result.lost,
        result.held_jobs,
        result.deployed_apps,
        "none lost or duplicated" if result.exact else verdict(False),
    )
    found.note(
        "CPU while deploying (100% = one core): "
        + ", ".join(f"{name} {share:.0%}" for name, share in result.cpu.items())
    )
    for error in result.errors:
        found.note(f"error: {error[:200]}")
    found.note(
        "All mutations sent at once on pre-opened connections; each app has 3 procs, so "
        "3 Nomad jobs. Registrations counted inside the fake from the register bodies."
    )
    return found
