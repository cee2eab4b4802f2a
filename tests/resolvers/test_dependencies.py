from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from resolvers.apps import deploy_app, get_app, list_apps, undeploy_app, update_app
from resolvers.core.context import OpContext
from resolvers.core.errors import Forbidden, InvalidInput
from resolvers.procs import list_procs
from resolvers.readmodel.views import AppStatus, AppType
from resolvers.releases import publish_release
from resolvers.repos import register_repo
from store.models import App, PortalBinding
from tests.fakes.scheduler import FakeScheduler
from tests.releases import V1, V2

SERVICE = """\
appname: echo-server
service.echo:
  cmd: ./echo -p 1234
  port: 1234
  portal:
    allow_clients: "good, also-*"
    cmd: ./proxy
    port: 10000
"""

REDIS = """\
appname: redis
apptype: resource
service.redis:
  cmd: redis-server --port 3333
  port: 3333
  num_instances: "{{ num_instances|default(2)|int(2) }}"
  memory: "{{ memory|default('64M') }}"
  portal:
    cmd: ./proxy
"""


def client_yaml(name: str, *, services: str = "", resources: str = "") -> str:
    return f"appname: {name}\nworker:\n  cmd: ./{name}\n{services}{resources}"


USES_ECHO = "use_services:\n  echo-server:\n    - echo\n"


def uses_redis(instances: int, memory: str = "128M") -> str:
    return (
        f"use_resources:\n  redis:\n    num_instances: {instances}\n"
        f"    memory: {memory}\n    services:\n      - redis\n"
    )


async def _app(ctx: OpContext, name: str, yaml: str, version: str = V1) -> None:
    await register_repo(ctx, name=name)
    await publish_release(ctx, app=name, meta_version=version, lain_yaml=yaml)


async def _count(sessions: async_sessionmaker[AsyncSession], model: type) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


class TestServices:
    @pytest.fixture
    async def service(self, ctx: OpContext) -> None:
        await _app(ctx, "echo-server", SERVICE)
        app = await deploy_app(ctx, name="echo-server")
        assert app.apptype is AppType.SERVICE

    @pytest.mark.usefixtures("service")
    async def test_service_itself_runs_no_portal(self, scheduler: FakeScheduler) -> None:
        assert set(scheduler.jobs) == {"echo-server.worker.echo"}

    @pytest.mark.usefixtures("service")
    async def test_allowed_clients_each_get_their_own_portal_job(
        self, ctx: OpContext, scheduler: FakeScheduler
    ) -> None:
        for client in ("good", "also-good"):
            await _app(ctx, client, client_yaml(client, services=USES_ECHO))
            await deploy_app(ctx, name=client)
        portal = scheduler.jobs["echo-server.portal.portal-echo_good"]
        assert portal.port == 10000
        assert ("LAIN_CLIENT_APPNAME", "good") in portal.env
        assert ("LAIN_SERVICE_NAME", "echo") in portal.env
        assert "echo-server.portal.portal-echo_also-good" in scheduler.jobs

    @pytest.mark.usefixtures("service")
    async def test_a_disallowed_client_fails_and_leaves_nothing(
        self,
        ctx: OpContext,
        scheduler: FakeScheduler,
        sessions: async_sessionmaker[AsyncSession],
    ) -> None:
        await _app(ctx, "bad", client_yaml("bad", services=USES_ECHO))
        jobs_before = dict(scheduler.jobs)
        with pytest.raises(InvalidInput, match="does not allow client bad"):
            await deploy_app(ctx, name="bad")
        assert scheduler.jobs == jobs_before
        assert (await get_app(ctx, name="bad")).status is AppStatus.UNDEPLOYED
        assert await _count(sessions, PortalBinding) == 0

    @pytest.mark.usefixtures("service")
    async def test_unknown_service_name_fails(self, ctx: OpContext) -> None:
        uses = "use_services:\n  echo-server:\n    - nope\n"
        await _app(ctx, "good", client_yaml("good", services=uses))
        with pytest.raises(InvalidInput, match="exports no service nope"):
            await deploy_app(ctx, name="good")

    async def test_a_service_that_is_not_deployed_fails_the_client(self, ctx: OpContext) -> None:
        await _app(ctx, "echo-server", SERVICE)
        await _app(ctx, "good", client_yaml("good", services=USES_ECHO))
        with pytest.raises(InvalidInput, match="service app echo-server is not deployed"):
            await deploy_app(ctx, name="good")

    @pytest.mark.usefixtures("service")
    async def test_service_update_and_undeploy_reach_the_client_portals(
        self, ctx: OpContext, scheduler: FakeScheduler
    ) -> None:
        await _app(ctx, "good", client_yaml("good", services=USES_ECHO))
        await deploy_app(ctx, name="good")
        await publish_release(
            ctx,
            app="echo-server",
            meta_version=V2,
            lain_yaml=SERVICE.replace("./proxy", "./proxy --v2"),
        )
        await update_app(ctx, name="echo-server")
        portal = scheduler.jobs["echo-server.portal.portal-echo_good"]
        assert portal.cmd == ("./proxy", "--v2")
        assert portal.meta_version == V2
        await undeploy_app(ctx, name="echo-server")
        assert "echo-server.portal.portal-echo_good" not in scheduler.jobs

    @pytest.mark.usefixtures("service")
    async def test_client_undeploy_removes_its_portal_only(
        self, ctx: OpContext, scheduler: FakeScheduler
    ) -> None:
        for client in ("good", "also-good"):
            await _app(ctx, client, client_yaml(client, services=USES_ECHO))
            await deploy_app(ctx, name=client)
        await undeploy_app(ctx, name="good")
        assert "echo-server.portal.portal-echo_good" not in scheduler.jobs
        assert "echo-server.portal.portal-echo_also-good" in scheduler.jobs


class TestResources:
    @pytest.fixture
    async def redis(self, ctx: OpContext) -> None:
        await _app(ctx, "redis", REDIS)
        assert (await deploy_app(ctx, name="redis")).apptype is AppType.RESOURCE

    @pytest.mark.usefixtures("redis")
    async def test_each_client_gets_its_own_instance_with_its_context(
        self, ctx: OpContext, scheduler: FakeScheduler
    ) -> None:
        await _app(ctx, "hello", client_yaml("hello", resources=uses_redis(1)))
        await _app(ctx, "world", client_yaml("world", resources=uses_redis(3, "256M")))
        await deploy_app(ctx, name="hello")
        await deploy_app(ctx, name="world")
        hello = scheduler.jobs["resource.redis.hello.worker.redis"]
        world = scheduler.jobs["resource.redis.world.worker.redis"]
        assert (hello.num_instances, hello.memory_bytes) == (1, 128 * 1024**2)
        assert (world.num_instances, world.memory_bytes) == (3, 256 * 1024**2)
        assert hello.image == f"registry.lain.local/redis:release-{V1}"
        assert "resource.redis.hello.portal.portal-redis_hello" in scheduler.jobs
        instance = await get_app(ctx, name="resource.redis.hello")
        assert (instance.apptype, instance.meta_version) == (AppType.RESOURCE_INSTANCE, V1)
        listed = await list_apps(ctx, apptype=AppType.RESOURCE_INSTANCE)
        assert [a.name for a in listed.items] == ["resource.redis.hello", "resource.redis.world"]
        # the client's own proc runs too, after its instance
        assert scheduler.calls.index(("apply", "resource.redis.hello.worker.redis")) < (
            scheduler.calls.index(("apply", "hello.worker.worker"))
        )

    @pytest.mark.usefixtures("redis")
    async def test_client_update_takes_the_new_resource_release(
        self, ctx: OpContext, scheduler: FakeScheduler
    ) -> None:
        await _app(ctx, "hello", client_yaml("hello", resources=uses_redis(1)))
        await deploy_app(ctx, name="hello")
        await publish_release(
            ctx, app="redis", meta_version=V2, lain_yaml=REDIS.replace("3333", "4444")
        )
        await update_app(ctx, name="redis")
        await publish_release(
            ctx,
            app="hello",
            meta_version=V2,
            lain_yaml=client_yaml("hello", resources=uses_redis(1)),
        )
        await update_app(ctx, name="hello")
        job = scheduler.jobs["resource.redis.hello.worker.redis"]
        assert (job.meta_version, job.port) == (V2, 4444)

    @pytest.mark.usefixtures("redis")
    async def test_client_undeploy_undeploys_its_instance(
        self, ctx: OpContext, scheduler: FakeScheduler
    ) -> None:
        await _app(ctx, "hello", client_yaml("hello", resources=uses_redis(1)))
        await deploy_app(ctx, name="hello")
        await undeploy_app(ctx, name="hello")
        assert scheduler.jobs == {}
        instance = await get_app(ctx, name="resource.redis.hello")
        assert instance.status is AppStatus.UNDEPLOYED

    async def test_unregistered_resource_fails_and_leaves_nothing(
        self,
        ctx: OpContext,
        scheduler: FakeScheduler,
        sessions: async_sessionmaker[AsyncSession],
    ) -> None:
        await _app(ctx, "hello", client_yaml("hello", resources=uses_redis(1)))
        with pytest.raises(InvalidInput, match="resource redis does not exist"):
            await deploy_app(ctx, name="hello")
        assert scheduler.jobs == {}
        assert await _count(sessions, App) == 1

    async def test_undeployed_resource_fails_the_client(self, ctx: OpContext) -> None:
        await _app(ctx, "redis", REDIS)
        await _app(ctx, "hello", client_yaml("hello", resources=uses_redis(1)))
        with pytest.raises(InvalidInput, match="resource redis is not deployed"):
            await deploy_app(ctx, name="hello")

    async def test_a_non_resource_cannot_be_used_as_one(self, ctx: OpContext) -> None:
        await _app(ctx, "redis", "appname: redis\nworker:\n  cmd: x\n")
        await deploy_app(ctx, name="redis")
        await _app(ctx, "hello", client_yaml("hello", resources=uses_redis(1)))
        with pytest.raises(InvalidInput, match="redis is not a resource"):
            await deploy_app(ctx, name="hello")

    @pytest.mark.usefixtures("redis")
    async def test_client_refused_by_the_scheduler_undoes_its_new_instance(
        self, ctx: OpContext, scheduler: FakeScheduler
    ) -> None:
        await _app(ctx, "hello", client_yaml("hello", resources=uses_redis(1)))
        scheduler.fail_jobs = {"hello.worker.worker"}
        with pytest.raises(InvalidInput):
            await deploy_app(ctx, name="hello")
        assert scheduler.jobs == {}
        assert (await get_app(ctx, name="resource.redis.hello")).status is AppStatus.UNDEPLOYED

    @pytest.mark.usefixtures("redis")
    async def test_the_resource_cannot_be_undeployed(self, ctx: OpContext) -> None:
        with pytest.raises(Forbidden):
            await undeploy_app(ctx, name="redis")

    @pytest.mark.usefixtures("redis")
    async def test_instance_procs_are_rendered(self, ctx: OpContext) -> None:
        await _app(ctx, "hello", client_yaml("hello", resources=uses_redis(2, "256M")))
        await deploy_app(ctx, name="hello")
        procs = {p.name: p for p in await list_procs(ctx, app="resource.redis.hello")}
        assert procs["redis"].num_instances == 2
        assert procs["redis"].memory == "256M"
        assert procs["redis"].spec.dns_search == ("hello.redis.resource.lain",)
