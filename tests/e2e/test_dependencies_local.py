"""Services, portals and resources with real processes (local backend)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backends.local import LocalScheduler
from backends.types import InstanceStatus
from resolvers.apps import deploy_app, undeploy_app
from resolvers.core.context import OpContext, Principal, Services
from resolvers.core.errors import InvalidInput
from resolvers.core.events import EventBus
from resolvers.releases import publish_release
from resolvers.repos import register_repo
from tests.app_python import APP_PYTHON
from tests.processes import kill_processes_in
from tests.releases import V1

SLEEP = f'[{APP_PYTHON}, -c, "import time; time.sleep(3600)"]'

SERVICE = f"""\
appname: echo-server
service.echo:
  cmd: {SLEEP}
  memory: 256m
  portal:
    allow_clients: good
    cmd: {SLEEP}
    memory: 256m
"""

REDIS = f"""\
appname: redis
apptype: resource
service.redis:
  cmd: {SLEEP}
  num_instances: "{{{{ num_instances|default(1)|int(1) }}}}"
  memory: "{{{{ memory|default('256M') }}}}"
  env:
    - "MAXMEMORY={{{{ maxmemory|default('1mb') }}}}"
  portal:
    cmd: {SLEEP}
    memory: 256m
"""


def client(name: str, uses: str) -> str:
    return f"appname: {name}\nworker:\n  cmd: {SLEEP}\n  memory: 256m\n{uses}"


@pytest.fixture
async def ctx(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> AsyncIterator[OpContext]:
    try:
        async with LocalScheduler(data_dir=tmp_path / "local", stop_on_exit=True) as scheduler:
            services = Services(sessions=sessions, scheduler=scheduler, bus=EventBus())
            yield OpContext(services=services, principal=Principal("alice"))
    finally:
        # stop_on_exit needs a clean exit; a test cancelled by its timeout gets none.
        kill_processes_in(tmp_path / "local")


async def _running(ctx: OpContext, job_id: str, count: int) -> list[int]:
    """Pids of the job's instances once `count` of them run; bounded by a deadline."""
    async with asyncio.timeout(30):
        while True:
            state = await ctx.scheduler.state(job_id)
            running = [i for i in state.instances if i.status is InstanceStatus.RUNNING]
            if len(running) == count:
                return [int(i.instance_id) for i in running]
            await asyncio.sleep(0.05)


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


async def _app(ctx: OpContext, name: str, yaml: str) -> None:
    await register_repo(ctx, name=name)
    await publish_release(ctx, app=name, meta_version=V1, lain_yaml=yaml)


async def test_service_portal_runs_per_allowed_client(ctx: OpContext) -> None:
    await _app(ctx, "echo-server", SERVICE)
    await deploy_app(ctx, name="echo-server")
    uses = "use_services:\n  echo-server:\n    - echo\n"
    await _app(ctx, "good", client("good", uses))
    await _app(ctx, "bad", client("bad", uses))
    await deploy_app(ctx, name="good")
    with pytest.raises(InvalidInput, match="does not allow client bad"):
        await deploy_app(ctx, name="bad")

    (portal_pid,) = await _running(ctx, "echo-server.portal.portal-echo_good", 1)
    env = _environ(portal_pid)
    assert (env["LAIN_CLIENT_APPNAME"], env["LAIN_SERVICE_NAME"]) == ("good", "echo")
    assert not (await ctx.scheduler.state("echo-server.portal.portal-echo_bad")).exists
    assert not (await ctx.scheduler.state("bad.worker.worker")).exists

    await undeploy_app(ctx, name="good")
    assert not (await ctx.scheduler.state("echo-server.portal.portal-echo_good")).exists
    await undeploy_app(ctx, name="echo-server")


async def test_resource_clients_get_their_own_instances(ctx: OpContext) -> None:
    await _app(ctx, "redis", REDIS)
    await deploy_app(ctx, name="redis")
    for name, count, maxmemory in (("hello", 1, "10mb"), ("world", 2, "20mb")):
        uses = (
            f"use_resources:\n  redis:\n    num_instances: {count}\n"
            f"    maxmemory: {maxmemory}\n    services:\n      - redis\n"
        )
        await _app(ctx, name, client(name, uses))
        await deploy_app(ctx, name=name)

    (hello_pid,) = await _running(ctx, "resource.redis.hello.worker.redis", 1)
    world_pids = await _running(ctx, "resource.redis.world.worker.redis", 2)
    assert _environ(hello_pid)["MAXMEMORY"] == "10mb"
    assert {_environ(pid)["MAXMEMORY"] for pid in world_pids} == {"20mb"}
    assert _environ(hello_pid)["LAIN_APPNAME"] == "resource.redis.hello"
    await _running(ctx, "resource.redis.hello.portal.portal-redis_hello", 1)

    await undeploy_app(ctx, name="hello")
    assert not (await ctx.scheduler.state("resource.redis.hello.worker.redis")).exists
    assert (await ctx.scheduler.state("resource.redis.world.worker.redis")).exists
    await undeploy_app(ctx, name="world")
