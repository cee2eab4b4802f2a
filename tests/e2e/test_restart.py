"""Killing the console mid-deploy and starting it again converges to the desired state."""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest

from tests.app_python import APP_PYTHON
from tests.e2e.console import Console, graphql, healthy, publish_hello, until

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("LAIN_CONSOLE_TEST_DATABASE_URL")),
    reason="runs the README's server on its default SQLite database; the same on PostgreSQL "
    "adds nothing the reconciler tests do not cover",
)

PROCS = 40  # applied one after another: a deploy long enough to be killed in the middle


def lain_yaml() -> str:
    workers = "".join(
        f"worker.w{n}:\n  cmd: [{APP_PYTHON}, -c, 'import time; time.sleep(3600)']\n"
        "  memory: 256m\n"
        for n in range(PROCS)
    )
    return f"appname: hello\n{workers}"


async def test_killed_mid_deploy_then_restarted_converges(console: Console) -> None:
    console.start()
    async with httpx.AsyncClient(base_url=console.url, timeout=60) as client:
        await publish_hello(client, lain_yaml())
        deploy_app = 'mutation { deployApp(input: {name: "hello"}) { errors { code } } }'
        deploy = asyncio.create_task(client.post("/graphql", json={"query": deploy_app}))
        await until(lambda: console.app_status() == "deploying")
        console.kill()
        with pytest.raises(httpx.TransportError):
            await deploy

    assert console.app_status() == "deploying"  # the kill caught the deploy in flight
    assert console.jobs_on_disk() < PROCS  # ... before it had applied every proc
    console.start()
    query = '{ app(name: "hello") { status procs { name instances { status } } } }'
    async with httpx.AsyncClient(base_url=console.url, timeout=30) as client:
        await until(lambda: healthy(client))

        async def converged() -> bool:
            app = (await graphql(client, query))["app"]
            statuses = {p["name"]: [i["status"] for i in p["instances"]] for p in app["procs"]}
            expected = {f"w{n}": ["RUNNING"] for n in range(PROCS)}
            return app["status"] == "DEPLOYED" and statuses == expected

        await until(converged)
        audit = await graphql(
            client, '{ app(name: "hello") { auditLog(first: 5) { nodes { user operation } } } }'
        )
    operations = [(e["user"], e["operation"]) for e in audit["app"]["auditLog"]["nodes"]]
    assert ("system", "RECONCILE") in operations
