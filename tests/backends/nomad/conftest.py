"""Fixtures for the Nomad backend: a fake Nomad on a real socket and a scheduler wired
to it (see helpers.py for the waiting helpers)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from backends.nomad import NomadScheduler, NomadSettings
from tests.backends.nomad.helpers import EventLog, open_scheduler, wait_until
from tests.fakes.nomad import FakeNomad
from tests.fakes.nomad_server import FakeNomadServer


@pytest.fixture
def fake(nomad_server: FakeNomadServer) -> FakeNomad:
    return nomad_server.fake


@pytest.fixture
def settings(nomad_server: FakeNomadServer) -> NomadSettings:
    return NomadSettings(address=nomad_server.url)


@pytest.fixture
async def scheduler(settings: NomadSettings) -> AsyncIterator[NomadScheduler]:
    async with open_scheduler(settings) as opened:
        yield opened


@pytest.fixture
async def connected(scheduler: NomadScheduler) -> NomadScheduler:
    """The scheduler once its event stream has connected and made its first reconcile."""
    stream = scheduler.event_stream
    assert stream is not None
    await wait_until(
        lambda: stream.connected and stream.reconciles > 0,
        message="the event stream to connect",
    )
    return scheduler


@pytest.fixture
async def event_log(connected: NomadScheduler) -> AsyncIterator[EventLog]:
    log = EventLog(connected)
    try:
        yield log
    finally:
        await log.close()
