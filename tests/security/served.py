"""The console served over real HTTP with the fake scheduler, for attacks on the front doors."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from server.app import create_app
from server.settings import load_settings
from tests.fakes.scheduler import FakeScheduler
from tests.live import serve


@contextlib.asynccontextmanager
async def fake_console(
    database_url: str, data_dir: Path, **changes: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a served console; `changes` replace settings (auth=True, ...)."""
    settings = replace(
        load_settings({}),
        data_dir=data_dir,
        database_url=database_url,
        reconcile_interval=0,
        **changes,
    )
    async with (
        serve(create_app(settings, scheduler=FakeScheduler())) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as client,
    ):
        yield client
