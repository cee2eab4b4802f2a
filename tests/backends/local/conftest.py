from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from backends.local import LocalScheduler
from tests.backends.local.helpers import EventLog, kill_and_reap, marked_pids, scheduler
from tests.processes import kill_processes_in


@pytest.fixture
def marker() -> Iterator[str]:
    """A value put into every test process's environment; whatever carries it dies at the end."""
    value = uuid.uuid4().hex
    yield value
    for pid in marked_pids(value):
        kill_and_reap(pid)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    yield path
    kill_processes_in(path)  # also what a test's own console subprocess left running


@pytest.fixture
async def sched(data_dir: Path, marker: str) -> AsyncIterator[LocalScheduler]:
    async with scheduler(data_dir) as opened:
        yield opened


@pytest.fixture
async def event_log(sched: LocalScheduler) -> AsyncIterator[EventLog]:
    log = EventLog(sched)
    yield log
    await log.close()
