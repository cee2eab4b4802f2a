from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from resolvers.core.context import OpContext, Principal, Services
from resolvers.core.events import EventBus
from tests.fakes.scheduler import FakeScheduler


@pytest.fixture
def scheduler() -> FakeScheduler:
    return FakeScheduler()


@pytest.fixture
def services(sessions: async_sessionmaker[AsyncSession], scheduler: FakeScheduler) -> Services:
    return Services(sessions=sessions, scheduler=scheduler, bus=EventBus())


@pytest.fixture
def ctx(services: Services) -> OpContext:
    return OpContext(services=services, principal=Principal("alice"))
