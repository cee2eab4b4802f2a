"""Instance output from Nomad: `/v1/client/fs/logs/<alloc>`, followed, and archived.

Nomad serves a task's stdout and stderr per allocation as a stream of JSON frames
(`{"Offset", "Data": <base64>, "File", "FileEvent"}`, empty `{}` heartbeats, written back
to back) from the client node, forwarded by the servers. It keeps no time per line, so
lines read from a tail have none; followed lines carry the time the console received
them. A line's `seq` is its end offset in its file, the file's rotation index above bit
40, so tails, live reads and archives of one allocation agree on positions.

Nomad deletes an allocation's files when it garbage-collects it. The archiver watches
the scheduler's own events: when an instance's allocation is replaced or ends, or its job
is removed, the last 1 MB of each stream goes to the console's `LogArchive`, and tails
read it from there once Nomad answers 404.

One reader per allocation and stream serves every follower of the job (a `LogFanout`);
a job's readers run while it has followers.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from backends.errors import SchedulerUnavailable
from backends.logs import (
    MAX_TAIL,
    ArchivedLog,
    LineBuffer,
    LogArchive,
    LogFanout,
    LogItem,
    LogLine,
    LogPosition,
    LogStream,
    LogSubscription,
    follow_lines,
)
from backends.types import EventKind, InstanceState, InstanceStatus, SchedulerEvent

__all__ = ["ARCHIVE_BYTES", "NomadLogs", "read_frames"]

ARCHIVE_BYTES = 1024 * 1024  # kept per stream of an allocation that ended
_TAIL_BYTES_PER_LINE = 512  # a tail of n lines reads this many bytes per line, at most 1 MB
_MIN_TAIL_BYTES = 64 * 1024
_FILE_SHIFT = 40
_ENDED = (InstanceStatus.EXITED, InstanceStatus.FAILED, InstanceStatus.COMPLETE)
_RECONNECT = 1.0
_REPLACED_GRACE = 2.0  # a replaced allocation's reader runs this long for its last lines
_ARCHIVED_KEPT = 10_000
_decoder = json.JSONDecoder()

logger = logging.getLogger(__name__)


class _Gone(Exception):
    """Nomad has no output for it (unknown or collected allocation, task not started)."""


def read_frames(buffer: str) -> tuple[list[dict[str, Any]], str]:
    """The complete frames at the start of `buffer` and what is left of it."""
    frames: list[dict[str, Any]] = []
    position = 0
    while True:
        while position < len(buffer) and buffer[position].isspace():
            position += 1
        if position >= len(buffer):
            return frames, ""
        try:
            frame, position = _decoder.raw_decode(buffer, position)
        except json.JSONDecodeError:
            return frames, buffer[position:]
        if isinstance(frame, dict):
            frames.append(frame)


def _file_base(file: str) -> int:
    index = file.rsplit(".", 1)[-1]
    return (int(index) << _FILE_SHIFT) if index.isdigit() else 0


@dataclass(frozen=True, slots=True)
class _Source:
    job_id: str
    instance: int
    alloc_id: str
    stream: LogStream


class _Decoder:
    """Frames of one allocation's stream into lines, skipping what was already given."""

    def __init__(self, source: _Source, *, mid_file: bool, after: int = -1) -> None:
        self._source = source
        self._lines = LineBuffer(skip_first=mid_file)
        self._after = after

    @property
    def last_seq(self) -> int:
        return self._after

    def feed(self, frame: dict[str, Any], when: datetime | None) -> list[LogLine]:
        raw = frame.get("Data")
        if not raw:
            return []  # a heartbeat, or a file event without data
        try:
            data = base64.b64decode(raw)
        except (binascii.Error, TypeError, ValueError) as exc:
            raise SchedulerUnavailable(f"nomad: a log frame is not base64: {exc}") from exc
        base = _file_base(str(frame.get("File", ""))) + int(frame.get("Offset") or 0)
        source = self._source
        found = []
        for text, end in self._lines.feed(data):
            seq = base + end
            if seq <= self._after:
                continue
            self._after = seq
            found.append(
                LogLine(
                    source.job_id,
                    source.instance,
                    source.stream,
                    when,
                    text,
                    seq,
                    source.alloc_id,
                )
            )
        return found


def _share(sizes: list[int], total: int) -> list[int]:
    """How many lines each source gives to a tail of `total`: fair, none left unused."""
    given = [0] * len(sizes)
    left = total
    open_ = [i for i, size in enumerate(sizes) if size > 0]
    while left > 0 and open_:
        each = max(1, left // len(open_))
        for i in list(open_):
            take = min(each, sizes[i] - given[i], left)
            given[i] += take
            left -= take
            if given[i] >= sizes[i]:
                open_.remove(i)
            if left <= 0:
                break
    return given


class NomadLogs:
    """Log reading for `NomadScheduler`; see the module's docstring.

    Args:
        http: the scheduler's httpx client (None while it is closed).
        params: namespace/region query parameters for every request.
        task_of: the task name of a job (its only task), None for an unknown job.
        instances: the job's current instances (their `instance_id` is the allocation).
        events: the scheduler's event feed, from now on.
        archive: where ended allocations' output is kept; None keeps nothing.
    """

    def __init__(
        self,
        *,
        http: Callable[[], httpx.AsyncClient | None],
        params: dict[str, str],
        task_of: Callable[[str], Awaitable[str | None]],
        instances: Callable[[str], Awaitable[tuple[InstanceState, ...]]],
        events: Callable[[], AsyncIterator[SchedulerEvent]],
        archive: LogArchive | None,
        follow_buffer: int = 10_000,
    ) -> None:
        self._http = http
        self._params = params
        self._task_of = task_of
        self._instances = instances
        self._events = events
        self._archive = archive
        self.fanout = LogFanout(queue_lines=follow_buffer)
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._archived: dict[str, None] = {}  # allocation ids, oldest first

    # Tails.

    async def tail(
        self, job_id: str, *, instance: int | None, lines: int, stream: LogStream | None
    ) -> list[LogLine]:
        streams = [stream] if stream is not None else list(LogStream)
        archived = await self._load_archive(job_id, instance)
        sources = [e.lines() for e in archived if e.stream in streams]
        kept = {(e.origin, e.stream) for e in archived}
        task = await self._task_of(job_id)
        if task is not None:
            live = [
                _Source(job_id, current.number, current.instance_id, name)
                for current in await self._instances(job_id)
                if instance in (None, current.number) and current.instance_id
                for name in streams
                if (current.instance_id, name) not in kept
            ]
            # Every allocation's streams at once: each read is a round trip to a client.
            reads = await asyncio.gather(*(self._read_or_none(s, task, lines) for s in live))
            sources.extend(found for found in reads if found is not None)
        shares = _share([len(found) for found in sources], lines)
        return [line for found, n in zip(sources, shares, strict=True) for line in found[-n:] if n]

    async def _read_or_none(self, source: _Source, task: str, lines: int) -> list[LogLine] | None:
        try:
            return await self._read(source, task, lines)
        except _Gone:
            return None

    async def _load_archive(self, job_id: str, instance: int | None) -> list[ArchivedLog]:
        if self._archive is None:
            return []
        return await self._archive.load(job_id, instance)

    async def _read(self, source: _Source, task: str, lines: int, size: int = 0) -> list[LogLine]:
        """The last lines of one stream (`size` bytes back, or enough for `lines`)."""
        back = size or min(ARCHIVE_BYTES, max(_MIN_TAIL_BYTES, lines * _TAIL_BYTES_PER_LINE))
        found: list[LogLine] = []
        decoder: _Decoder | None = None
        async with self._stream(source, task, follow=False, back=back) as frames:
            async for frame in frames:
                if decoder is None:
                    decoder = _Decoder(source, mid_file=int(frame.get("Offset") or 0) > 0)
                found.extend(decoder.feed(frame, None))
        return found[-lines:] if lines > 0 else []

    @contextlib.asynccontextmanager
    async def _stream(
        self, source: _Source, task: str, *, follow: bool, back: int
    ) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        http = self._http()
        if http is None:
            raise SchedulerUnavailable("the Nomad scheduler is not open")
        params = {
            **self._params,
            "task": task,
            "type": str(source.stream),
            "origin": "end",
            "offset": str(back),
            "follow": "true" if follow else "false",
        }
        url = f"/v1/client/fs/logs/{source.alloc_id}"
        try:
            # No read timeout while following: heartbeats come every second, and a
            # follower waits for lines as long as it likes.
            timeout = httpx.Timeout(http.timeout.connect, read=None) if follow else http.timeout
            async with http.stream("GET", url, params=params, timeout=timeout) as response:
                if response.status_code == 404:
                    raise _Gone(source.alloc_id)
                if response.status_code != 200:
                    text = (await response.aread()).decode("utf-8", "replace").strip()
                    raise SchedulerUnavailable(
                        f"nomad: logs of allocation {source.alloc_id}: "
                        f"{response.status_code} {text}"
                    )
                yield _frames(response)
        except httpx.HTTPError as exc:
            raise SchedulerUnavailable(f"nomad: logs of {source.alloc_id}: {exc}") from exc

    # Following.

    def follow(
        self, job_id: str, *, instance: int | None, tail: int, after: LogPosition | None
    ) -> AsyncIterator[list[LogItem]]:
        def subscribe() -> LogSubscription:
            subscription = self.fanout.subscribe(job_id, instance)
            watcher = self._watchers.get(job_id)
            if watcher is None or watcher.done():
                self._watchers[job_id] = asyncio.create_task(
                    self._watch(job_id), name=f"nomad-logs-{job_id}"
                )
            return subscription

        def read_tail(count: int) -> Awaitable[list[LogLine]]:
            return self.tail(job_id, instance=instance, lines=count, stream=None)

        return follow_lines(subscribe, read_tail, tail=tail, after=after)

    async def _watch(self, job_id: str) -> None:
        """Run one reader per live allocation and stream of the job while it has followers."""
        readers: dict[tuple[str, LogStream], asyncio.Task[None]] = {}
        current: dict[int, str] = {}
        changed = asyncio.Event()
        events = asyncio.create_task(self._note_changes(job_id, current, changed))
        try:
            for state in await self._instances(job_id):
                if state.instance_id and state.status not in _ENDED:
                    current[state.number] = state.instance_id
            while self.fanout.followers(job_id):
                task = await self._task_of(job_id)
                live = {(alloc, number) for number, alloc in current.items()}
                for alloc_id, number in live:
                    for stream in LogStream:
                        key = (alloc_id, stream)
                        if task is not None and (key not in readers or readers[key].done()):
                            source = _Source(job_id, number, alloc_id, stream)
                            readers[key] = asyncio.create_task(self._reader(source, task))
                for key, reader in list(readers.items()):
                    if key[0] not in current.values():
                        reader.get_loop().call_later(_REPLACED_GRACE, reader.cancel)
                        del readers[key]
                changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), 1.0)
        except Exception:
            logger.exception("following the output of %s failed", job_id)
        finally:
            events.cancel()
            for reader in readers.values():
                reader.cancel()
            await asyncio.gather(events, *readers.values(), return_exceptions=True)

    async def _note_changes(
        self, job_id: str, current: dict[int, str], changed: asyncio.Event
    ) -> None:
        async for event in self._events():
            state = event.instance
            if event.job_id != job_id or state is None:
                continue
            if state.status in _ENDED or not state.instance_id:
                current.pop(state.number, None)
            else:
                current[state.number] = state.instance_id
            changed.set()

    async def _reader(self, source: _Source, task: str) -> None:
        """Follow one stream, reconnecting (and skipping what was seen) until cancelled."""
        last = -1
        while True:
            try:
                async with self._stream(source, task, follow=True, back=_MIN_TAIL_BYTES) as frames:
                    decoder: _Decoder | None = None
                    async for frame in frames:
                        if decoder is None:
                            if not frame.get("Data"):
                                continue  # a heartbeat before any data
                            offset = int(frame.get("Offset") or 0)
                            decoder = _Decoder(source, mid_file=offset > 0, after=last)
                        lines = decoder.feed(frame, datetime.now(UTC))
                        if lines:
                            last = decoder.last_seq
                            self.fanout.publish(source.job_id, lines)
            except _Gone:
                # Not started yet (a new allocation is pending): try again until the watcher
                # cancels this reader because the allocation is no longer current.
                pass
            except SchedulerUnavailable as exc:
                logger.warning("%s", exc)
            await asyncio.sleep(_RECONNECT)

    # Archiving.

    async def run_archiver(self) -> None:
        """Archive each allocation that ends or is replaced; runs until cancelled."""
        if self._archive is None:
            return
        last: dict[tuple[str, int], str] = {}
        async for event in self._events():
            if event.kind is EventKind.PROC_REMOVED:
                for (job_id, number), alloc_id in list(last.items()):
                    if job_id == event.job_id:
                        await self._archive_alloc(job_id, number, alloc_id)
                        del last[(job_id, number)]
                continue
            state = event.instance
            if state is None or not state.instance_id:
                continue
            key = (event.job_id, state.number)
            previous = last.get(key)
            if previous is not None and previous != state.instance_id:
                await self._archive_alloc(event.job_id, state.number, previous)
            last[key] = state.instance_id
            if state.status in _ENDED:
                await self._archive_alloc(event.job_id, state.number, state.instance_id)

    async def _archive_alloc(self, job_id: str, number: int, alloc_id: str) -> None:
        if self._archive is None or alloc_id in self._archived:
            return
        task = await self._task_of(job_id)
        if task is None:
            return
        try:
            for stream in LogStream:
                source = _Source(job_id, number, alloc_id, stream)
                try:
                    lines = await self._read(source, task, MAX_TAIL * 100, size=ARCHIVE_BYTES)
                except _Gone:
                    continue
                entry = ArchivedLog(
                    job_id=job_id,
                    instance=number,
                    origin=alloc_id,
                    stream=stream,
                    data=ArchivedLog.encode(lines),
                    ended_at=datetime.now(UTC),
                )
                await self._archive.save(entry)
        except Exception:
            # Archiving is best effort: the output is still in Nomad until its GC.
            logger.exception("cannot archive the output of allocation %s", alloc_id)
            return
        self._archived[alloc_id] = None
        while len(self._archived) > _ARCHIVED_KEPT:
            del self._archived[next(iter(self._archived))]

    async def close(self) -> None:
        self.fanout.close()
        for watcher in self._watchers.values():
            watcher.cancel()
        await asyncio.gather(*self._watchers.values(), return_exceptions=True)
        self._watchers.clear()


async def _frames(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    buffer = ""
    async for text in response.aiter_text():
        frames, buffer = read_frames(buffer + text)
        for frame in frames:
            yield frame
        if len(buffer) > 4 * ARCHIVE_BYTES:
            raise SchedulerUnavailable("nomad: the log stream is not made of JSON frames")
