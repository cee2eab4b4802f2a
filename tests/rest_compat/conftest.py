"""The app served over real HTTP (uvicorn on a loopback port) with the FakeScheduler."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.app import create_app
from server.settings import Settings, load_settings
from tests.fakes.scheduler import FakeScheduler
from tests.live import serve
from tests.rest_compat.helpers import Rest


@pytest.fixture
def settings(database_url: str, data_dir: Path, engine: object) -> Settings:
    # `engine` empties the database before each test. No reconciler rounds: what a test sees
    # is what its requests did.
    return replace(
        load_settings({}), data_dir=data_dir, database_url=database_url, reconcile_interval=0
    )


@pytest.fixture
def fake_scheduler() -> FakeScheduler:
    return FakeScheduler()


@pytest.fixture
async def base_url(settings: Settings, fake_scheduler: FakeScheduler) -> AsyncIterator[str]:
    async with serve(create_app(settings, scheduler=fake_scheduler)) as url:
        yield url


@pytest.fixture
async def rest(base_url: str) -> AsyncIterator[Rest]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        yield Rest(client)


@pytest.fixture
def rest_with(
    settings: Settings, fake_scheduler: FakeScheduler
) -> Callable[..., AbstractAsyncContextManager[Rest]]:
    """Another app on the FakeScheduler, with some settings changed: `rest_with(registry=...)`."""

    @contextlib.asynccontextmanager
    async def served(**changes: Any) -> AsyncIterator[Rest]:
        app = create_app(replace(settings, **changes), scheduler=fake_scheduler)
        async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
            yield Rest(client)

    return served


@pytest.fixture
async def local_rest(settings: Settings) -> AsyncIterator[Rest]:
    """The app with its default backend, which runs procs as real local processes."""
    async with (
        serve(create_app(settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=60) as client,
    ):
        rest = Rest(client)
        try:
            yield rest
        finally:
            # Processes outlive the server (they are adopted by the next one): stop them.
            listed = await rest.request("GET", "/api/v1/apps/")
            for app in listed.json()["apps"] or []:
                await rest.request("DELETE", f"/api/v1/apps/{app['appname']}/")
