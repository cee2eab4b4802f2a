"""Instance output as it crosses the scheduler boundary: lines, resume positions, fan-out.

Every backend reads its own storage (files, Nomad's fs/logs) into `LogLine`s; what is the
same for all of them lives here: how raw bytes become a line that is safe to show, where a
reader resumes, and how one reader's lines reach many followers without a slow follower
holding anyone up.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import heapq
import json
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

__all__ = [
    "CUT_MARKER",
    "MAX_LINE_BYTES",
    "MAX_TAIL",
    "ArchivedLog",
    "BadLogPosition",
    "LineBuffer",
    "LogArchive",
    "LogFanout",
    "LogItem",
    "LogLine",
    "LogPosition",
    "LogStream",
    "LogSubscription",
    "LogsDropped",
    "clean_line",
    "follow_lines",
    "merge_in_time_order",
]

MAX_TAIL = 10_000  # the most lines one tail answers with
MAX_LINE_BYTES = 16 * 1024  # a longer line is cut here and marked
CUT_MARKER = " [line cut at 16 KB]"


class LogStream(StrEnum):
    STDOUT = "stdout"
    STDERR = "stderr"


class BadLogPosition(ValueError):
    """A resume position that this console did not hand out."""


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of one instance's stdout or stderr.

    `origin` names the thing that wrote it where an instance number is reused by several
    (a Nomad allocation id; "" for the local backend, whose slots share their files), and
    `seq` orders the lines of one (instance, stream, origin) source: resuming after a line
    means taking that source's lines with a larger `seq`.
    """

    job_id: str
    instance: int
    stream: LogStream
    time: datetime | None  # None where the backend cannot know when it was written
    text: str
    seq: int = 0
    origin: str = ""

    @property
    def source(self) -> tuple[int, str, str]:
        return (self.instance, str(self.stream), self.origin)


@dataclass(frozen=True, slots=True)
class LogsDropped:
    """`count` lines were not delivered to this follower because it read too slowly."""

    job_id: str
    count: int
    time: datetime | None = None

    @property
    def text(self) -> str:
        return f"[{self.count} lines dropped: this reader was too slow]"


LogItem = LogLine | LogsDropped


@dataclass(frozen=True, slots=True)
class ArchivedLog:
    """The last part of one stream of an instance that has ended, kept by the console.

    `data` holds "<seq> <text>\n" lines, so archived lines keep the `seq` they had
    while they were followed, and resume positions stay valid.
    """

    job_id: str
    instance: int
    origin: str  # the backend's name for what wrote it (a Nomad allocation id)
    stream: LogStream
    data: bytes
    ended_at: datetime

    def lines(self) -> list[LogLine]:
        found = []
        for raw in self.data.split(b"\n"):
            seq, sep, text = raw.partition(b" ")
            if sep and seq.isdigit():
                found.append(
                    LogLine(
                        self.job_id,
                        self.instance,
                        self.stream,
                        None,
                        text.decode("utf-8", "replace"),
                        int(seq),
                        self.origin,
                    )
                )
        return found

    @staticmethod
    def encode(lines: Iterable[LogLine]) -> bytes:
        return b"".join(f"{line.seq} {line.text}\n".encode() for line in lines)


class LogArchive(Protocol):
    """Where a backend keeps what its scheduler forgets (the console's database)."""

    async def save(self, entry: ArchivedLog) -> None:
        """Store `entry`, replacing an earlier one of the same origin and stream."""
        ...

    async def load(self, job_id: str, instance: int | None = None) -> list[ArchivedLog]:
        """The job's entries (one instance's, or all), oldest ended first."""
        ...


def clean_line(raw: bytes) -> str:
    """Bytes of one line (without its newline) as text that is always safe to show.

    Invalid UTF-8 becomes U+FFFD, a trailing CR goes, and a line over 16 KB is cut there
    with a marker (on a character boundary, so the cut adds no replacement character).
    """
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    if len(raw) <= MAX_LINE_BYTES:
        return raw.decode("utf-8", "replace")
    head = raw[:MAX_LINE_BYTES].decode("utf-8", "replace")
    # A multibyte character split by the cut decodes as up to three U+FFFD: drop them.
    tail_bytes = raw[MAX_LINE_BYTES : MAX_LINE_BYTES + 3]
    if tail_bytes and 0x80 <= tail_bytes[0] < 0xC0:
        head = head.rstrip("\ufffd")
    return head + CUT_MARKER


class LineBuffer:
    """Cuts a byte stream into clean lines, carrying a partial line between chunks.

    `feed` returns each complete line's text with the index just past its newline in
    the chunk fed (backends turn it into a `seq`). A line over MAX_LINE_BYTES is given
    cut at once and the rest of it, up to its newline, skipped.
    """

    def __init__(self, *, skip_first: bool = False) -> None:
        self._partial = b""
        self._skipping = skip_first  # inside a line that is not to be shown

    def feed(self, data: bytes) -> list[tuple[str, int]]:
        found: list[tuple[str, int]] = []
        start = 0
        while True:
            newline = data.find(b"\n", start)
            if newline < 0:
                break
            piece = self._partial + data[start:newline]
            self._partial = b""
            if self._skipping:
                self._skipping = False
            else:
                found.append((clean_line(piece), newline + 1))
            start = newline + 1
        rest = data[start:]
        if self._skipping:
            return found
        self._partial += rest
        if len(self._partial) > MAX_LINE_BYTES:
            found.append((clean_line(self._partial), len(data)))
            self._partial, self._skipping = b"", True
        return found

    @property
    def pending(self) -> bool:
        """Whether part of a line waits for its newline."""
        return bool(self._partial)

    def take_partial(self) -> str | None:
        """The waiting part of a line as a line of its own (a writer that went quiet
        without a newline); what follows it later starts a new line."""
        if not self._partial:
            return None
        text, self._partial = clean_line(self._partial), b""
        return text


class LogPosition:
    """Where a reader stands in each source it has seen: the `seq` of its last line.

    Opaque outside the backends: clients get `encode()`d strings and hand them back.
    """

    __slots__ = ("_seen",)

    def __init__(self, seen: Mapping[tuple[int, str, str], int] | None = None) -> None:
        self._seen: dict[tuple[int, str, str], int] = dict(seen or {})

    def is_new(self, line: LogLine) -> bool:
        return line.seq > self._seen.get(line.source, -1)

    def advance(self, line: LogLine) -> None:
        if self.is_new(line):
            self._seen[line.source] = line.seq

    def advance_all(self, items: Iterable[LogItem]) -> None:
        """`advance` for each line of a batch in order (sources publish in `seq` order)."""
        self._seen.update({item.source: item.seq for item in items if isinstance(item, LogLine)})

    def last_seq(self, source: tuple[int, str, str]) -> int | None:
        return self._seen.get(source)

    def copy(self) -> LogPosition:
        return LogPosition(self._seen)

    def encode(self) -> str:
        payload = [[i, s, o, seq] for (i, s, o), seq in sorted(self._seen.items())]
        raw = json.dumps(payload, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> LogPosition:
        """Raises BadLogPosition for anything `encode` did not make."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            payload = json.loads(raw)
            seen = {
                (int(i), str(LogStream(s)), str(o)): int(seq)
                for i, s, o, seq in payload
                if not isinstance(seq, bool)
            }
        except (binascii.Error, ValueError, TypeError) as exc:
            raise BadLogPosition("not a log position this console gave out") from exc
        return cls(seen)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LogPosition) and other._seen == self._seen

    def __repr__(self) -> str:
        return f"LogPosition({self._seen!r})"


def _time_key(line: LogLine) -> tuple[float, int]:
    return (line.time.timestamp() if line.time is not None else 0.0, line.seq)


def merge_in_time_order(sources: Iterable[list[LogLine]], *, last: int) -> list[LogLine]:
    """The newest `last` lines of several sources, each already in order, oldest first."""
    merged = list(heapq.merge(*sources, key=_time_key))
    return merged[-last:] if last > 0 else []


class _Follower:
    """One reader's bounded queue; overflow is counted, never waited on."""

    def __init__(self, instance: int | None, limit: int) -> None:
        self.instance = instance
        self._limit = limit
        self._queue: deque[LogItem] = deque()
        self._dropped = 0
        self._woken = asyncio.Event()
        self.closed = False

    def offer(self, job_id: str, lines: list[LogLine]) -> None:
        if self.instance is not None:
            lines = [line for line in lines if line.instance == self.instance]
        if not lines:
            return
        room = self._limit - len(self._queue)
        taken = lines[: max(room, 0)]
        if taken:
            if self._dropped:
                self._queue.append(LogsDropped(job_id, self._dropped, taken[0].time))
                self._dropped = 0
            self._queue.extend(taken)
        self._dropped += len(lines) - len(taken)
        self._woken.set()

    async def take(self, job_id: str) -> list[LogItem]:
        while not self._queue and not self._dropped and not self.closed:
            self._woken.clear()
            await self._woken.wait()
        items = list(self._queue)
        self._queue.clear()
        if self._dropped:
            items.append(LogsDropped(job_id, self._dropped, datetime.now(UTC)))
            self._dropped = 0
        return items


class LogFanout:
    """Hands each batch of lines, read once, to every follower of that job.

    `publish` never blocks: a follower whose queue is full loses lines and is told how
    many (a `LogsDropped` in their place), so a slow reader slows neither the writer nor
    the other readers.
    """

    def __init__(self, *, queue_lines: int = 10_000) -> None:
        self._queue_lines = queue_lines
        self._followers: dict[str, set[_Follower]] = {}

    def followers(self, job_id: str) -> int:
        return len(self._followers.get(job_id, ()))

    def followed_jobs(self) -> list[str]:
        """The jobs someone follows now."""
        return [job_id for job_id, followers in self._followers.items() if followers]

    def publish(self, job_id: str, lines: list[LogLine]) -> None:
        for follower in self._followers.get(job_id, ()):
            follower.offer(job_id, lines)

    def close(self) -> None:
        for followers in self._followers.values():
            for follower in followers:
                follower.closed = True
                follower._woken.set()

    def subscribe(self, job_id: str, instance: int | None) -> LogSubscription:
        """Lines of `job_id` (one instance, or all) published from now on, until closed.

        Registered at once, so a caller that reads the past after subscribing misses
        nothing in between (it drops what it already had by `LogPosition`).
        """
        follower = _Follower(instance, self._queue_lines)
        self._followers.setdefault(job_id, set()).add(follower)
        return LogSubscription(self, job_id, follower)

    def follow(
        self,
        job_id: str,
        instance: int | None,
        read_tail: Callable[[int], Awaitable[list[LogLine]]],
        *,
        tail: int,
        after: LogPosition | None,
    ) -> AsyncIterator[list[LogItem]]:
        """`follow_lines` over a subscription to this fan-out (made on first read)."""
        return follow_lines(
            lambda: self.subscribe(job_id, instance), read_tail, tail=tail, after=after
        )

    def _forget(self, job_id: str, follower: _Follower) -> None:
        followers = self._followers.get(job_id)
        if followers is not None:
            followers.discard(follower)
            if not followers:
                del self._followers[job_id]


class LogSubscription:
    """One follower's end of a `LogFanout`; close it (or use `with`) when done."""

    def __init__(self, fanout: LogFanout, job_id: str, follower: _Follower) -> None:
        self._fanout = fanout
        self._job_id = job_id
        self._follower = follower

    async def next_batch(self) -> list[LogItem]:
        """The lines published since the last call (waits for one); [] once closed."""
        return await self._follower.take(self._job_id)

    def close(self) -> None:
        self._follower.closed = True
        self._follower._woken.set()
        self._fanout._forget(self._job_id, self._follower)

    def __enter__(self) -> LogSubscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


async def follow_lines(
    subscribe: Callable[[], LogSubscription],
    read_tail: Callable[[int], Awaitable[list[LogLine]]],
    *,
    tail: int,
    after: LogPosition | None,
) -> AsyncIterator[list[LogItem]]:
    """The newest `tail` lines (`read_tail(n)`, read after subscribing; with `after`, every
    line after it that a tail still holds), then the subscription's lines, in batches as
    they were read, each line once.

    Nothing is subscribed until the first batch is asked for, so an iterator that is
    never iterated holds nothing. Lines both read from the past and published meanwhile,
    and lines at or before `after`, are recognised by their source's `seq` and skipped.
    """
    with subscribe() as subscription:
        position = after.copy() if after is not None else LogPosition()
        first = _fresh(position, await read_tail(tail if after is None else MAX_TAIL))
        if first:
            yield first
        # Once a published batch holds nothing already given, none later can: each
        # source publishes in `seq` order. From then on batches pass untouched, which is
        # what lets a hundred followers share a busy stream.
        overlapping = True
        while True:
            batch = await subscription.next_batch()
            if not batch:
                return
            if overlapping:
                fresh = _fresh(position, batch)
                overlapping = len(fresh) < len(batch)
                batch = fresh
            if batch:
                yield batch


def _fresh(position: LogPosition, items: Iterable[LogItem]) -> list[LogItem]:
    fresh: list[LogItem] = []
    for item in items:
        if isinstance(item, LogLine):
            if not position.is_new(item):
                continue
            position.advance(item)
        fresh.append(item)
    return fresh
