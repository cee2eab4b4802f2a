"""The real app over HTTP, driving a NomadScheduler against the fake Nomad, with the fake's
fault switches at hand and the reconciler runnable on demand.

Each test gets a fresh cluster and an empty database, with the repo `hello` registered and
two releases of it published (nothing deployed). The app runs no reconciler rounds of its
own unless a test overrides the `reconcile_interval` fixture, so what a test sees is what
its requests and its `console.reconcile()` calls did. Nothing needs undeploying after a
test: the next one gets a fresh cluster, every fault switched off.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from backends.nomad import NomadScheduler, NomadSettings
from resolvers.core.context import SYSTEM, OpContext, Services
from resolvers.core.events import EventBus
from server.app import create_app
from server.settings import load_settings
from store.engine import make_sessionmaker
from tests.fakes.nomad_server import FakeNomadServer
from tests.faults.helpers import HEARTBEAT_TIMEOUT, REQUEST_TIMEOUT, Console
from tests.live import serve
from tests.releases import V1, V2, two_proc_yaml


@pytest.fixture
def reconcile_interval() -> int:
    """Seconds between the app's own reconciler rounds; 0: none (override to turn on)."""
    return 0


@pytest.fixture
def read_cache_bytes() -> int:
    """The read cache's size, the default; 0 (parametrize) for a test that counts how reads
    reach the scheduler, which repeated reads from the cache never do."""
    return load_settings({}).read_cache_bytes


@pytest.fixture
async def console(
    nomad_server: FakeNomadServer,
    database_url: str,
    data_dir: Path,
    engine: AsyncEngine,
    reconcile_interval: int,
    read_cache_bytes: int,
) -> AsyncIterator[Console]:
    settings = replace(
        load_settings({}),
        data_dir=data_dir,
        database_url=database_url,
        backend="nomad",
        reconcile_interval=reconcile_interval,
        read_cache_bytes=read_cache_bytes,
    )
    scheduler = NomadScheduler(
        NomadSettings(address=nomad_server.url),
        timeout=REQUEST_TIMEOUT,
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
        reconnect_backoff=(0.02, 0.2),
    )
    # The reconciler as the app runs it, on the same database and scheduler. Its bus and
    # its operation guard are its own: the app's subscribers do not see its app events,
    # and tests run it only while no mutation is in flight.
    system = OpContext(
        services=Services(
            sessions=make_sessionmaker(engine),
            scheduler=scheduler,
            bus=EventBus(),
            registry=settings.registry,
            domains=(settings.domain,),
        ),
        principal=SYSTEM,
    )
    async with (
        serve(create_app(settings, scheduler=scheduler)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as http,
    ):
        console = Console(base_url, http, nomad_server, scheduler, system)
        await console.wait_connected()
        await console.ok("registerRepo", name="hello")
        for version in (V1, V2):
            await console.ok(
                "publishRelease", app="hello", metaVersion=version, lainYaml=two_proc_yaml()
            )
        try:
            yield console
        finally:
            # Whatever the test left switched on, the app must be able to shut down cleanly.
            nomad_server.faults.reset()
            nomad_server.faults.accept_connections()
