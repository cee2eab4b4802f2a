"""Instance output from Nomad's fs/logs framing, followed across a rollout, and archived
in the console's database so it outlives Nomad's garbage collection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backends.logs import LogItem, LogLine, LogsDropped, LogStream
from backends.nomad import NomadScheduler, NomadSettings
from backends.nomad.logs import read_frames
from resolvers.core.log_archive import DatabaseLogArchive
from tests.backends.nomad.helpers import make_job, open_scheduler, wait_until
from tests.fakes.nomad import FakeNomad
from tests.fakes.nomad_logs import collect_garbage, output_of
from tests.fakes.nomad_server import FakeNomadServer

JOB_ID = "hello.web.web"


@pytest.fixture
def archive(sessions: async_sessionmaker[AsyncSession]) -> DatabaseLogArchive:
    return DatabaseLogArchive(sessions, retention=timedelta(days=7))


@pytest.fixture
async def logged(
    settings: NomadSettings, archive: DatabaseLogArchive
) -> AsyncIterator[NomadScheduler]:
    async with open_scheduler(settings, log_archive=archive, log_follow_buffer=50) as opened:
        stream = opened.event_stream
        assert stream is not None
        await wait_until(lambda: stream.connected and stream.reconciles > 0, message="events")
        yield opened


def _alloc_of(fake: FakeNomad, number: int) -> str:
    """The live allocation of instance `number` (its name ends in `[number - 1]`)."""
    found = [
        alloc
        for alloc in fake.allocations_of(JOB_ID)
        if alloc["Name"].endswith(f"[{number - 1}]") and alloc["DesiredStatus"] == "run"
    ]
    return str(found[-1]["ID"])


async def _running(scheduler: NomadScheduler, fake: FakeNomad, **changes: Any) -> None:
    await scheduler.apply(make_job(**changes))
    fake.settle()


def test_frames_are_read_back_to_back_with_heartbeats() -> None:
    raw = '{}{"Offset":5,"Data":"aGk=","File":"alloc/logs/web.stdout.0"}\n{}{"Da'
    frames, rest = read_frames(raw)
    assert frames == [{}, {"Offset": 5, "Data": "aGk=", "File": "alloc/logs/web.stdout.0"}, {}]
    assert rest == '{"Da'


async def test_fake_answers_fs_logs_as_nomad(
    nomad_server: FakeNomadServer, logged: NomadScheduler, fake: FakeNomad
) -> None:
    await _running(logged, fake)
    alloc = _alloc_of(fake, 1)
    output_of(fake).write(alloc, "stdout", b"one\ntwo\n")
    async with httpx.AsyncClient(base_url=nomad_server.url) as client:
        url = f"/v1/client/fs/logs/{alloc}"
        plain = await client.get(url, params={"task": "web", "type": "stdout", "plain": "true"})
        assert (plain.status_code, plain.text) == (200, "one\ntwo\n")
        framed = await client.get(
            url, params={"task": "web", "type": "stdout", "origin": "end", "offset": "4"}
        )
        assert framed.headers["content-type"] == "application/json"
        assert framed.json() == {
            "Offset": 4,
            "Data": "dHdvCg==",
            "File": "alloc/logs/web.stdout.0",
        }
        for params, status, text in [
            ({"task": "web", "type": "stdin"}, 400, "must provide log type (stdout/stderr)"),
            ({"type": "stdout"}, 400, "must provide task name"),
            ({"task": "web", "type": "stdout", "origin": "middle"}, 400, "origin must be start"),
            ({"task": "nope", "type": "stdout"}, 400, 'unknown task name "nope"'),
        ]:
            answer = await client.get(url, params=params)
            assert answer.status_code == status
            assert answer.text.startswith(text)
        unknown = await client.get("/v1/client/fs/logs/0000", params={"task": "web"})
        assert unknown.status_code == 400  # the type is checked before the allocation
        unknown = await client.get(
            "/v1/client/fs/logs/0000", params={"task": "web", "type": "stdout"}
        )
        assert (unknown.status_code, unknown.text) == (404, 'Unknown allocation "0000"')


async def test_tail_reads_every_instance_and_stream(
    logged: NomadScheduler, fake: FakeNomad
) -> None:
    await _running(logged, fake)
    output = output_of(fake)
    output.write(_alloc_of(fake, 1), "stdout", b"booting\nready \xff\xfe\n" + b"x" * 20000 + b"\n")
    output.write(_alloc_of(fake, 2), "stderr", b"warning\n")

    lines = await logged.log_tail(JOB_ID, lines=100)
    assert [(line.instance, line.stream, line.text[:12]) for line in lines] == [
        (1, LogStream.STDOUT, "booting"),
        (1, LogStream.STDOUT, "ready \ufffd\ufffd"),
        (1, LogStream.STDOUT, "x" * 12),
        (2, LogStream.STDERR, "warning"),
    ]
    assert lines[2].text == "x" * 16384 + " [line cut at 16 KB]"
    assert all(line.time is None for line in lines)  # Nomad keeps no time per line
    assert [line.text for line in await logged.log_tail(JOB_ID, instance=1, lines=1)] == [
        lines[2].text
    ]
    errors = await logged.log_tail(JOB_ID, lines=10, stream=LogStream.STDERR)
    assert [line.text for line in errors] == ["warning"]
    assert await logged.log_tail("nobody.web.web", lines=10) == []


class _Collected:
    def __init__(self, batches: AsyncIterator[list[LogItem]]) -> None:
        self.items: list[LogItem] = []
        self._task = asyncio.create_task(self._collect(batches))

    async def _collect(self, batches: AsyncIterator[list[LogItem]]) -> None:
        async for batch in batches:
            self.items.extend(batch)

    def texts(self) -> list[str]:
        return [item.text for item in self.items if isinstance(item, LogLine)]

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def test_follow_survives_a_rollout_and_archive_outlives_gc(
    logged: NomadScheduler,
    fake: FakeNomad,
    nomad_server: FakeNomadServer,
    archive: DatabaseLogArchive,
) -> None:
    await _running(logged, fake, num_instances=1)
    old = _alloc_of(fake, 1)
    output = output_of(fake)
    output.write(old, "stdout", b"old 1\n")
    followed = _Collected(logged.log_follow(JOB_ID, tail=10))
    try:
        await wait_until(lambda: followed.texts() == ["old 1"], message="the tail")
        output.write(old, "stdout", b"old 2\n")
        await wait_until(lambda: followed.texts() == ["old 1", "old 2"], message="a new line")
        live = followed.items[-1]
        assert isinstance(live, LogLine)
        assert live.time is not None  # followed lines carry the time they arrived

        # A new image replaces the allocation; the follower reads the new one by itself,
        # also when it first sees it pending (Nomad: 404, "not started yet").
        await logged.apply(make_job(num_instances=1, image="registry.lain.local/hello:2"))
        new = _alloc_of(fake, 1)
        assert new != old
        path = f"/v1/client/fs/logs/{new}"
        await wait_until(
            lambda: any(seen.path == path for seen in nomad_server.seen),
            within=10,
            message="a read of the pending allocation",
        )
        fake.settle()
        output.write(new, "stdout", b"new 1\n")
        await wait_until(lambda: "new 1" in followed.texts(), within=10, message="new alloc")
        assert followed.texts().count("old 1") == 1  # nothing twice
    finally:
        await followed.close()

    # The replaced allocation was archived; after Nomad's GC its output still answers.
    async def archived() -> bool:
        return any(entry.origin == old for entry in await archive.load(JOB_ID))

    await wait_until(archived, within=10, message="the archive of the old allocation")
    collect_garbage(fake, old)
    texts = [line.text for line in await logged.log_tail(JOB_ID, instance=1, lines=10)]
    assert texts == ["old 1", "old 2", "new 1"]


async def test_slow_follower_gets_a_dropped_marker(logged: NomadScheduler, fake: FakeNomad) -> None:
    await _running(logged, fake, num_instances=1)
    alloc = _alloc_of(fake, 1)
    items = logged.log_follow(JOB_ID, tail=0)
    first = asyncio.ensure_future(anext(items))
    try:
        output_of(fake).write(alloc, "stdout", b"first\n")
        assert [line.text for line in await asyncio.wait_for(first, 10)] == ["first"]
        # 500 lines in one frame: the follower queues 50 and counts the rest.
        output_of(fake).write(alloc, "stdout", b"".join(b"line %d\n" % n for n in range(500)))
        seen: list[LogItem] = []
        async with asyncio.timeout(10):
            while not any(isinstance(item, LogsDropped) for item in seen):
                seen.extend(await anext(items))
        marker = next(item for item in seen if isinstance(item, LogsDropped))
        assert marker.count > 0
    finally:
        await items.aclose()  # type: ignore[attr-defined]
