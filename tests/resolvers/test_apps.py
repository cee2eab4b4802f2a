from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from resolvers.apps import deploy_app, get_app, list_apps, undeploy_app, update_app
from resolvers.core.context import OpContext
from resolvers.core.errors import BackendUnavailable, Conflict, Forbidden, InvalidInput, NotFound
from resolvers.procs import list_procs, scale_proc
from resolvers.readmodel.views import AppStatus, AppType
from resolvers.releases import publish_release
from resolvers.repos import register_repo
from store.models import App, AuditEntry, Proc
from tests.fakes.scheduler import FakeScheduler
from tests.releases import V1, V2, two_proc_yaml

# A resource is a template of procs; a release without any is refused at publish.
REDIS_RESOURCE = "appname: redis\napptype: resource\nworker:\n  cmd: redis-server\n"


async def _published(ctx: OpContext, app: str = "hello", yaml: str | None = None) -> None:
    await register_repo(ctx, name=app)
    await publish_release(ctx, app=app, meta_version=V1, lain_yaml=yaml or two_proc_yaml(app))


async def _snapshot(sessions: async_sessionmaker[AsyncSession]) -> tuple[object, ...]:
    async with sessions() as session:
        apps = [
            (a.name, a.meta_version, a.status, a.last_error)
            for a in (await session.execute(select(App))).scalars()
        ]
        procs = [
            (p.name, p.num_instances, p.cpu, p.memory, p.deployed)
            for p in (await session.execute(select(Proc))).scalars()
        ]
        audit = len((await session.execute(select(AuditEntry))).all())
    return tuple(apps), tuple(procs), audit


class TestDeployApp:
    async def test_deploy_app_applies_every_proc_of_the_latest_release(
        self, ctx: OpContext, scheduler: FakeScheduler
    ) -> None:
        await _published(ctx)
        await publish_release(ctx, app="hello", meta_version=V2, lain_yaml=two_proc_yaml())
        app = await deploy_app(ctx, name="hello")
        assert (app.meta_version, app.status, app.apptype) == (V2, AppStatus.DEPLOYED, AppType.APP)
        assert [c for c in scheduler.calls if c[0] == "apply"] == [
            ("apply", "hello.web.web"),
            ("apply", "hello.worker.jobs"),
        ]
        web = scheduler.jobs["hello.web.web"]
        assert web.cmd == ("python", "-m", "http.server")
        assert web.port == 8080
        assert web.memory_bytes == 64 * 1024**2
        assert web.healthcheck == "/health"
        assert web.image == f"registry.lain.local/hello:release-{V2}"
        assert ("GREETING", "hi") in web.env
        assert ("LAIN_APPNAME", "hello") in web.env
        assert scheduler.jobs["hello.worker.jobs"].num_instances == 2

    async def test_deploy_app_given_release(self, ctx: OpContext) -> None:
        await _published(ctx)
        await publish_release(ctx, app="hello", meta_version=V2, lain_yaml=two_proc_yaml())
        assert (await deploy_app(ctx, name="hello", meta_version=V1)).meta_version == V1

    async def test_deploy_app_twice_is_a_conflict(self, ctx: OpContext) -> None:
        await _published(ctx)
        await deploy_app(ctx, name="hello")
        with pytest.raises(Conflict, match="already deployed"):
            await deploy_app(ctx, name="hello")

    async def test_deploy_app_concurrent_deploys_one_wins_one_conflicts(
        self, ctx: OpContext
    ) -> None:
        await _published(ctx)
        results = await asyncio.gather(
            deploy_app(ctx, name="hello"), deploy_app(ctx, name="hello"), return_exceptions=True
        )
        assert sum(isinstance(r, Conflict) for r in results) == 1
        assert sum(not isinstance(r, Exception) for r in results) == 1

    @pytest.mark.parametrize(
        ("app", "version", "error"),
        [("ghost", None, NotFound), ("hello", V2, NotFound)],
    )
    async def test_deploy_app_unknown_app_or_release(
        self,
        ctx: OpContext,
        sessions: async_sessionmaker[AsyncSession],
        app: str,
        version: str | None,
        error: type[Exception],
    ) -> None:
        await _published(ctx)
        before = await _snapshot(sessions)
        with pytest.raises(error):
            await deploy_app(ctx, name=app, meta_version=version)
        assert await _snapshot(sessions) == before

    async def test_deploy_app_without_release_is_not_found(self, ctx: OpContext) -> None:
        await register_repo(ctx, name="hello")
        with pytest.raises(NotFound, match="no release"):
            await deploy_app(ctx, name="hello")

    async def test_deploy_app_backend_down_changes_nothing(
        self,
        ctx: OpContext,
        scheduler: FakeScheduler,
        sessions: async_sessionmaker[AsyncSession],
    ) -> None:
        await _published(ctx)
        before = await _snapshot(sessions)
        scheduler.down = True
        with pytest.raises(BackendUnavailable):
            await deploy_app(ctx, name="hello")
        assert await _snapshot(sessions) == before

    async def test_deploy_app_refused_first_deploy_is_undone_with_its_error(
        self, ctx: OpContext, scheduler: FakeScheduler
    ) -> None:
        await _published(ctx)
        scheduler.fail_jobs = {"hello.worker.jobs"}
        with pytest.raises(InvalidInput, match=r"fake scheduler refuses hello\.worker\.jobs"):
            await deploy_app(ctx, name="hello")
        assert scheduler.jobs == {}  # the web job that went through was removed again
        app = await get_app(ctx, name="hello")
        assert (app.meta_version, app.status) == (None, AppStatus.UNDEPLOYED)
        assert "hello.worker.jobs: fake scheduler refuses" in app.last_error
        scheduler.fail_jobs = set()
        assert (await deploy_app(ctx, name="hello")).status is AppStatus.DEPLOYED

    async def test_deploy_app_resource_runs_nothing(
        self, ctx: OpContext, scheduler: FakeScheduler
    ) -> None:
        yaml = "appname: redis\napptype: resource\nworker.redis:\n  cmd: redis-server\n"
        await _published(ctx, "redis", yaml)
        app = await deploy_app(ctx, name="redis")
        assert (app.apptype, app.status) == (AppType.RESOURCE, AppStatus.DEPLOYED)
        assert scheduler.calls == []


class TestUpdateApp:
    async def test_update_app_keeps_running_counts_and_adds_and_removes_procs(
        self, ctx: OpContext, scheduler: FakeScheduler
    ) -> None:
        await _published(ctx)
        await deploy_app(ctx, name="hello")
        await scale_proc(ctx, app="hello", proc="web", num_instances=3)
        new_yaml = two_proc_yaml(web_instances=5).replace("worker.jobs", "worker.mail")
        await publish_release(ctx, app="hello", meta_version=V2, lain_yaml=new_yaml)

        app = await update_app(ctx, name="hello")

        assert app.meta_version == V2
        assert scheduler.jobs["hello.web.web"].num_instances == 3  # kept, not lain.yaml's 5
        assert scheduler.jobs["hello.web.web"].meta_version == V2
        assert "hello.worker.jobs" not in scheduler.jobs
        assert scheduler.jobs["hello.worker.mail"].num_instances == 2
        assert [p.name for p in await list_procs(ctx, app="hello")] == ["web", "mail"]

    async def test_update_app_not_deployed_is_not_found(self, ctx: OpContext) -> None:
        await _published(ctx)
        with pytest.raises(NotFound, match="has not been deployed"):
            await update_app(ctx, name="hello")

    async def test_update_app_backend_down_changes_nothing(
        self,
        ctx: OpContext,
        scheduler: FakeScheduler,
        sessions: async_sessionmaker[AsyncSession],
    ) -> None:
        await _published(ctx)
        await deploy_app(ctx, name="hello")
        await publish_release(ctx, app="hello", meta_version=V2, lain_yaml=two_proc_yaml())
        before = await _snapshot(sessions)
        scheduler.down = True
        with pytest.raises(BackendUnavailable):
            await update_app(ctx, name="hello")
        assert await _snapshot(sessions) == before


class TestUndeployApp:
    async def test_undeploy_app_removes_jobs_and_keeps_the_registration(
        self, ctx: OpContext, scheduler: FakeScheduler
    ) -> None:
        await _published(ctx)
        await deploy_app(ctx, name="hello")
        app = await undeploy_app(ctx, name="hello")
        assert (app.meta_version, app.status) == (None, AppStatus.UNDEPLOYED)
        assert scheduler.jobs == {}
        assert (await list_apps(ctx)).items == ()
        assert (await deploy_app(ctx, name="hello")).status is AppStatus.DEPLOYED

    async def test_undeploy_app_resource_is_forbidden(self, ctx: OpContext) -> None:
        await _published(ctx, "redis", REDIS_RESOURCE)
        await deploy_app(ctx, name="redis")
        with pytest.raises(Forbidden, match=r"Not allow to delete resource app\."):
            await undeploy_app(ctx, name="redis")

    async def test_undeploy_app_not_deployed_is_not_found(self, ctx: OpContext) -> None:
        await _published(ctx)
        with pytest.raises(NotFound):
            await undeploy_app(ctx, name="hello")


async def test_list_apps_filters_by_type(ctx: OpContext) -> None:
    await _published(ctx)
    await _published(ctx, "redis", REDIS_RESOURCE)
    await deploy_app(ctx, name="hello")
    await deploy_app(ctx, name="redis")
    assert [a.name for a in (await list_apps(ctx)).items] == ["hello", "redis"]
    resources = await list_apps(ctx, apptype=AppType.RESOURCE)
    assert [a.name for a in resources.items] == ["redis"]
