from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from resolvers.core.context import OpContext
from resolvers.core.errors import Conflict, InvalidInput, NotFound
from resolvers.releases import get_release, list_releases, publish_release
from resolvers.repos import get_repo, list_repos, register_repo
from store.models import AuditEntry, Release
from tests.releases import V1, V2, V3, meta_version, two_proc_yaml


async def _count(sessions: async_sessionmaker[AsyncSession], model: type) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


class TestRegisterRepo:
    async def test_register_repo_records_an_audit_entry(
        self, ctx: OpContext, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        repo = await register_repo(ctx, name="hello")
        assert repo.name == "hello"
        async with sessions() as session:
            entry = (await session.execute(select(AuditEntry))).scalar_one()
        assert (entry.username, entry.operation, entry.app) == ("alice", "REPOSIT", "hello")

    async def test_register_repo_twice_is_a_conflict(self, ctx: OpContext) -> None:
        await register_repo(ctx, name="hello")
        with pytest.raises(Conflict, match="app hello already exists"):
            await register_repo(ctx, name="hello")

    @pytest.mark.parametrize("name", ["", "9lives", "bad_name", "a--b", "trailing-", "service"])
    async def test_register_repo_bad_name_is_invalid(
        self, ctx: OpContext, sessions: async_sessionmaker[AsyncSession], name: str
    ) -> None:
        with pytest.raises(InvalidInput) as raised:
            await register_repo(ctx, name=name)
        assert raised.value.field == "name"
        assert await _count(sessions, AuditEntry) == 0

    async def test_get_repo_unknown_is_not_found(self, ctx: OpContext) -> None:
        with pytest.raises(NotFound):
            await get_repo(ctx, name="nope")

    async def test_list_repos_pages_by_name(self, ctx: OpContext) -> None:
        for name in ["c", "a", "b", "d"]:
            await register_repo(ctx, name=name)
        first = await list_repos(ctx, first=3)
        assert [r.name for r in first.items] == ["a", "b", "c"]
        assert first.has_next
        second = await list_repos(ctx, first=3, after=first.end_cursor)
        assert [r.name for r in second.items] == ["d"]
        assert not second.has_next
        assert second.has_previous

    @pytest.mark.parametrize("first", [-1, 101])
    async def test_list_repos_first_out_of_range_is_invalid(
        self, ctx: OpContext, first: int
    ) -> None:
        with pytest.raises(InvalidInput) as raised:
            await list_repos(ctx, first=first)
        assert raised.value.field == "first"

    async def test_list_repos_foreign_cursor_is_invalid(self, ctx: OpContext) -> None:
        with pytest.raises(InvalidInput) as raised:
            await list_repos(ctx, after="bm90LWEtY3Vyc29y")
        assert raised.value.field == "after"


class TestPublishRelease:
    async def test_publish_release_stores_the_parsed_release(self, ctx: OpContext) -> None:
        await register_repo(ctx, name="hello")
        release = await publish_release(
            ctx, app="hello", meta_version=V1, lain_yaml=two_proc_yaml(), image="img:1"
        )
        assert release.meta_version == V1
        assert [p.name for p in release.config.procs] == ["web", "jobs"]
        assert (await get_release(ctx, app="hello", meta_version=V1)).image == "img:1"

    async def test_publish_release_duplicate_version_is_a_conflict(
        self, ctx: OpContext, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        await register_repo(ctx, name="hello")
        await publish_release(ctx, app="hello", meta_version=V1, lain_yaml=two_proc_yaml())
        with pytest.raises(Conflict) as raised:
            await publish_release(ctx, app="hello", meta_version=V1, lain_yaml=two_proc_yaml())
        assert raised.value.field == "metaVersion"
        assert await _count(sessions, Release) == 1

    @pytest.mark.parametrize(
        ("kwargs", "field", "message"),
        [
            ({"meta_version": "release-1"}, "metaVersion", "invalid meta_version"),
            ({"lain_yaml": "appname: [unclosed"}, "lainYaml", "invalid lain.yaml"),
            ({"lain_yaml": two_proc_yaml("other")}, "lainYaml", "appname dont match"),
            ({"lain_yaml": "appname: hello\nweb:\n  memory: lots\n"}, "lainYaml", "memory"),
            ({"image": "has spaces in it"}, "image", "image must be"),
        ],
    )
    async def test_publish_release_invalid_input_names_the_field(
        self,
        ctx: OpContext,
        sessions: async_sessionmaker[AsyncSession],
        kwargs: dict[str, str],
        field: str,
        message: str,
    ) -> None:
        await register_repo(ctx, name="hello")
        arguments = {"app": "hello", "meta_version": V1, "lain_yaml": two_proc_yaml()}
        with pytest.raises(InvalidInput) as raised:
            await publish_release(ctx, **{**arguments, **kwargs})
        assert raised.value.field == field
        assert message in raised.value.message
        assert await _count(sessions, Release) == 0

    async def test_publish_release_unknown_app_is_not_found(self, ctx: OpContext) -> None:
        with pytest.raises(NotFound):
            await publish_release(ctx, app="ghost", meta_version=V1, lain_yaml=two_proc_yaml())

    async def test_list_releases_is_newest_first_and_pages(self, ctx: OpContext) -> None:
        await register_repo(ctx, name="hello")
        for version in [V2, V1, V3, meta_version(1_600_000_000)]:
            await publish_release(ctx, app="hello", meta_version=version, lain_yaml=two_proc_yaml())
        page = await list_releases(ctx, app="hello", first=2)
        assert [r.meta_version for r in page.items] == [V3, V2]
        rest = await list_releases(ctx, app="hello", first=2, after=page.end_cursor)
        assert [r.meta_version for r in rest.items] == [V1, meta_version(1_600_000_000)]
        assert not rest.has_next


async def test_register_repo_name_too_long_is_invalid(ctx: OpContext) -> None:
    with pytest.raises(InvalidInput, match="at most 63 characters"):
        await register_repo(ctx, name="a" * 64)
    assert (await register_repo(ctx, name="a" * 63)).name == "a" * 63
