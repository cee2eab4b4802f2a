from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from server.app import create_app
from server.settings import load_settings
from tests.fakes.scheduler import FakeScheduler


class GraphQLClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post("/graphql", json={"query": query, "variables": variables})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def fake_scheduler() -> FakeScheduler:
    return FakeScheduler()


@pytest.fixture
async def gql(
    database_url: str, data_dir: Path, engine: object, fake_scheduler: FakeScheduler
) -> AsyncIterator[GraphQLClient]:
    settings = replace(load_settings({}), data_dir=data_dir, database_url=database_url)
    app = create_app(settings, scheduler=fake_scheduler)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(manager.app), base_url="http://test"
        ) as http,
    ):
        yield GraphQLClient(http)
