"""Instance output: raw files written by the processes, journaled with times by the console.

Processes write stdout and stderr straight into raw files (opened O_APPEND at spawn), so
output keeps landing while no console is attached and survives a console restart. One pump
reads every raw file from a worker thread, stamps each new line with the time it read it,
numbers it, and appends it to the instance's journal, which is what tails and followers
read; the same batch goes to every follower through one `LogFanout`, so a hundred followers
cost one read of each file.

    <n>.stdout.log        raw, written by the process; the read part is given back to the
                          file system (a punched hole), so it never grows on disk
    <n>.stdout.state      the pump's offset in the raw file and the last line number
    <n>.stdout.journal    "<seq> <microseconds since epoch> <text>" per line; rotated at
                          `max_bytes` to .1, .2 … (`files` generations in all)

Files stay when an instance exits, is replaced or its job is removed; `prune` deletes
what is older than the retention age, then the oldest files beyond the total size.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import json
import os
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from backends.local.threads import ThreadBridge
from backends.logs import (
    LineBuffer,
    LogFanout,
    LogLine,
    LogStream,
    merge_in_time_order,
)

__all__ = ["InstanceLogs", "LogPump", "LogRetention", "journaled_instances", "read_tail"]

# A raw file first seen without a state file (written by an older console) is journaled
# from this far before its end, not in full.
_BACKLOG_BYTES = 64 * 1024
# The read part of a raw file is given back once this much has been read.
_RECLAIM_BYTES = 1024 * 1024
_READ_CHUNK = 64 * 1024
# A part of a line with no newline after it for this long is shown as a line (a process
# that printed a prompt, or died mid-line).
_PARTIAL_WAIT = 1.0
# An instance that wrote within this many seconds is read at every interval.
_LIVELY_SECONDS = 5.0
_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02


@dataclass(frozen=True, slots=True)
class LogRetention:
    """How long and how much output the data dir keeps (files of live instances excepted)."""

    max_age_seconds: float = 7 * 24 * 3600
    max_total_bytes: int = 1024 * 1024 * 1024


def _punch_hole(fd: int, length: int) -> bool:
    """Free the first `length` bytes of the file on disk, keeping its size and offsets.

    A writer appending meanwhile loses nothing (unlike truncation). False where the file
    system or libc cannot.
    """
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    fallocate = libc.fallocate
    fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]
    mode = _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE
    return bool(fallocate(fd, mode, 0, length) == 0)


class _Source:
    """One stream of one instance slot; touched only by the pump's worker thread."""

    def __init__(self, job_id: str, number: int, stream: LogStream, directory: Path) -> None:
        self.job_id = job_id
        self.number = number
        self.stream = stream
        self.raw = directory / f"{number}.{stream}.log"
        self.journal = directory / f"{number}.{stream}.journal"
        self._state = directory / f"{number}.{stream}.state"
        self._offset: int | None = None
        self._seq = 0
        self._lines = LineBuffer()
        self._data_at = 0.0  # monotonic time of the last new bytes
        self.bytes_read = 0

    def files(self) -> tuple[Path, Path, Path]:
        return (self.raw, self.journal, self._state)

    def _load_state(self, size: int) -> None:
        try:
            state = json.loads(self._state.read_text())
            self._offset, self._seq = int(state["offset"]), int(state["seq"])
        except (OSError, ValueError, KeyError, TypeError):
            self._offset = max(0, size - _BACKLOG_BYTES)
            self._seq = _last_seq(self.journal)
            # Started mid-file: the first piece is the end of a line.
            self._lines = LineBuffer(skip_first=self._offset > 0)

    def read(self, now: datetime, max_bytes: int, files: int) -> list[LogLine]:
        """Journal what was written since the last read; the new lines."""
        try:
            size = self.raw.stat().st_size
        except FileNotFoundError:
            return []
        if self._offset is None:
            self._load_state(size)
        assert self._offset is not None
        if size < self._offset:  # replaced or truncated by someone else: start over
            self._offset, self._lines = 0, LineBuffer()
        if size == self._offset:
            return self._quiet(now, max_bytes, files)
        with self.raw.open("rb") as file:
            file.seek(self._offset)
            data = file.read(size - self._offset)
            self._offset += len(data)
            self.bytes_read += len(data)
            if self._offset >= _RECLAIM_BYTES:
                self._reclaim(file.fileno())
        self._data_at = time.monotonic()
        return self._journal(self._split(data, now), max_bytes, files)

    def _quiet(self, now: datetime, max_bytes: int, files: int) -> list[LogLine]:
        """No new bytes: a part of a line left waiting too long is shown as it is."""
        if not self._lines.pending or time.monotonic() - self._data_at < _PARTIAL_WAIT:
            return []
        text = self._lines.take_partial()
        if text is None:
            return []
        self._seq += 1
        line = LogLine(self.job_id, self.number, self.stream, now, text, self._seq)
        return self._journal([line], max_bytes, files)

    def _journal(self, lines: list[LogLine], max_bytes: int, files: int) -> list[LogLine]:
        if lines:
            self._append(lines, max_bytes, files)
        self._state.write_text(json.dumps({"offset": self._offset, "seq": self._seq}))
        return lines

    def _reclaim(self, fd: int) -> None:
        assert self._offset is not None  # only called after a read has journaled
        with contextlib.suppress(OSError):
            writable = os.open(self.raw, os.O_WRONLY)  # fallocate needs a writable fd
            try:
                if _punch_hole(writable, self._offset):
                    return
            finally:
                os.close(writable)
        if os.fstat(fd).st_size == self._offset:
            # No holes on this file system: truncate, where a line written in this very
            # moment is lost.
            os.truncate(self.raw, 0)
            self._offset = 0

    def _split(self, data: bytes, now: datetime) -> list[LogLine]:
        lines = []
        for text, _ in self._lines.feed(data):
            self._seq += 1
            lines.append(LogLine(self.job_id, self.number, self.stream, now, text, self._seq))
        return lines

    def _append(self, lines: list[LogLine], max_bytes: int, files: int) -> None:
        """Append to the journal, rotating it whenever it reaches `max_bytes`."""
        usec = int(lines[0].time.timestamp() * 1_000_000) if lines[0].time else 0
        try:
            size = self.journal.stat().st_size
        except FileNotFoundError:
            size = 0
        pending: list[bytes] = []
        for line in lines:
            if max_bytes and size >= max_bytes:
                self._write(pending)
                _rotate(self.journal, files)
                pending, size = [], 0
            encoded = f"{line.seq} {usec} {line.text}\n".encode()
            pending.append(encoded)
            size += len(encoded)
        self._write(pending)

    def _write(self, pending: list[bytes]) -> None:
        if pending:
            with self.journal.open("ab") as journal:
                journal.write(b"".join(pending))


def _rotate(path: Path, files: int) -> None:
    for generation in range(max(files, 1) - 1, 0, -1):
        older = path.with_name(f"{path.name}.{generation}")
        newer = path if generation == 1 else path.with_name(f"{path.name}.{generation - 1}")
        if generation == files - 1:
            older.unlink(missing_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.replace(newer, older)
    if files <= 1:
        path.unlink(missing_ok=True)


def _generations(journal: Path) -> list[Path]:
    """The journal's files, newest first."""
    older = sorted(
        (p for p in journal.parent.glob(journal.name + ".*") if p.suffix[1:].isdigit()),
        key=lambda p: int(p.suffix[1:]),
    )
    return [journal, *older]


def _last_lines(path: Path, count: int) -> list[bytes]:
    """The last `count` lines of a file, read backwards in chunks."""
    try:
        file = path.open("rb")
    except FileNotFoundError:
        return []
    with file:
        end = file.seek(0, os.SEEK_END)
        data = b""
        while end > 0 and data.count(b"\n") <= count:
            start = max(0, end - _READ_CHUNK)
            file.seek(start)
            data = file.read(end - start) + data
            end = start
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if end > 0:
        lines = lines[1:]  # the first piece may be the end of a longer line
    return lines[-count:] if count > 0 else []


def _parse(job_id: str, number: int, stream: LogStream, raw: bytes) -> LogLine | None:
    seq, _, rest = raw.partition(b" ")
    usec, _, text = rest.partition(b" ")
    try:
        when = datetime.fromtimestamp(int(usec) / 1_000_000, UTC)
        return LogLine(job_id, number, stream, when, text.decode("utf-8", "replace"), int(seq))
    except ValueError:
        return None


def _last_seq(journal: Path) -> int:
    for path in _generations(journal):
        for raw in reversed(_last_lines(path, 1)):
            parsed = _parse("", 0, LogStream.STDOUT, raw)
            if parsed is not None:
                return parsed.seq
    return 0


def read_tail(
    directory: Path, job_id: str, numbers: list[int], streams: list[LogStream], count: int
) -> list[LogLine]:
    """The newest `count` lines of the instances' journals, merged in time order (blocking)."""
    sources: list[list[LogLine]] = []
    for number in numbers:
        for stream in streams:
            found: list[LogLine] = []
            for path in _generations(directory / f"{number}.{stream}.journal"):
                wanted = count - len(found)
                if wanted <= 0:
                    break
                parsed = (_parse(job_id, number, stream, raw) for raw in _last_lines(path, wanted))
                found = [line for line in parsed if line is not None] + found
            sources.append(found)
    return merge_in_time_order(sources, last=count)


def journaled_instances(directory: Path) -> list[int]:
    """The instance numbers that have journals in `directory` (blocking)."""
    numbers = set()
    with contextlib.suppress(FileNotFoundError):
        for path in directory.iterdir():
            head, _, rest = path.name.partition(".")
            if head.isdigit() and ".journal" in rest:
                numbers.add(int(head))
    return sorted(numbers)


class InstanceLogs:
    """The log files and the in-memory ring of one instance slot (shared by its processes)."""

    def __init__(self, job_id: str, directory: Path, number: int, *, ring_lines: int) -> None:
        self.stdout_path = directory / f"{number}.stdout.log"
        self.stderr_path = directory / f"{number}.stderr.log"
        self._ring: deque[LogLine] = deque(maxlen=ring_lines)
        # When the pump last found new lines (monotonic); a new slot counts as heard from,
        # so that its process's first words are read at once.
        self.heard_at = time.monotonic()
        self._sources = tuple(
            _Source(job_id, number, stream, directory)
            for stream in (LogStream.STDOUT, LogStream.STDERR)
        )

    def lines(self, limit: int | None = None) -> list[LogLine]:
        """The most recent lines, oldest first; at most `limit` when given."""
        lines = list(self._ring)
        if limit is None:
            return lines
        return lines[-limit:] if limit > 0 else []

    def files(self) -> list[Path]:
        return [path for source in self._sources for path in source.files()]

    @property
    def bytes_read(self) -> int:
        return sum(source.bytes_read for source in self._sources)

    def _read(self, now: datetime, max_bytes: int, files: int) -> list[LogLine]:
        return [line for source in self._sources for line in source.read(now, max_bytes, files)]

    def _extend(self, lines: list[LogLine]) -> None:
        self._ring.extend(lines)


def prune(root: Path, keep: set[Path], retention: LogRetention, now: float) -> None:
    """Delete log files older than the retention age, then the oldest beyond the total."""
    found: list[tuple[float, int, Path]] = []
    for path in root.rglob("*"):
        with contextlib.suppress(FileNotFoundError):
            if path.is_file():
                info = path.stat()
                found.append((info.st_mtime, info.st_blocks * 512, path))
    total = sum(size for _, size, _ in found)
    for mtime, size, path in sorted(found):
        if path in keep:
            continue
        if mtime < now - retention.max_age_seconds or total > retention.max_total_bytes:
            path.unlink(missing_ok=True)
            total -= size
    for directory in root.iterdir() if root.is_dir() else ():
        with contextlib.suppress(OSError):
            directory.rmdir()  # only when empty


class LogPump:
    """Reads the files of every attached instance every `interval` seconds.

    Args:
        blocking: runs a blocking callable in a worker thread (the backend's bridge).
        root: the directory holding every job's log directory (for pruning).
        interval: seconds between two reads of the files of followed instances and of
            those that wrote in the last few seconds.
        quiet_interval: seconds between two reads of every file.
        max_bytes: a journal reaching this size is rotated; 0 means never.
        files: journal generations kept per stream, the current one included.
        ring_lines: lines kept in memory per instance.
        retention: what `prune` keeps.
        prune_every: seconds between two prunes.
        follow_buffer: lines queued for one follower before it loses lines.
    """

    def __init__(
        self,
        *,
        blocking: ThreadBridge,
        root: Path,
        interval: float = 0.05,
        quiet_interval: float = 1.0,
        max_bytes: int = 10 * 1024 * 1024,
        files: int = 3,
        ring_lines: int = 1000,
        retention: LogRetention | None = None,
        prune_every: float = 300.0,
        follow_buffer: int = 10_000,
    ) -> None:
        self._blocking = blocking
        self._root = root
        self._interval = interval
        self._quiet_interval = quiet_interval
        self._max_bytes = max_bytes
        self._files = files
        self._ring_lines = ring_lines
        self._retention = retention or LogRetention()
        self._prune_every = prune_every
        self._logs: dict[tuple[str, int], InstanceLogs] = {}
        # The instances heard from in the last _LIVELY_SECONDS (or since attached).
        self._heard: dict[tuple[str, int], InstanceLogs] = {}
        self.fanout = LogFanout(queue_lines=follow_buffer)
        # One read at a time: a source's position is not safe to share between threads.
        self._reading = asyncio.Lock()

    def attach(self, job_id: str, number: int, directory: Path) -> InstanceLogs:
        """The logs of instance `number` of `job_id`, read from now on (idempotent)."""
        key = (job_id, number)
        if key not in self._logs:
            self._logs[key] = InstanceLogs(job_id, directory, number, ring_lines=self._ring_lines)
            self._heard[key] = self._logs[key]
        return self._logs[key]

    def detach(self, job_id: str, number: int) -> None:
        self._logs.pop((job_id, number), None)
        self._heard.pop((job_id, number), None)

    def get(self, job_id: str, number: int) -> InstanceLogs | None:
        return self._logs.get((job_id, number))

    @property
    def bytes_read(self) -> int:
        """Raw bytes read from the attached instances' files: once, whatever the followers."""
        return sum(logs.bytes_read for logs in self._logs.values())

    async def run(self) -> None:
        """Read forever, pruning now and then; cancel the task to stop.

        Every `interval` the instances that are followed or wrote lately are read; the
        quiet ones only every `quiet_interval`, all in one go: an idle console with
        hundreds of instances must not look at every file twenty times a second. (A tail
        reads everything first, so it never misses what a quiet instance just wrote.)
        """
        loop = asyncio.get_running_loop()
        next_prune = next_everything = loop.time()
        while True:
            if loop.time() >= next_everything:
                await self.flush()
                next_everything = loop.time() + self._quiet_interval
            else:
                await self.flush(self._lively())
            if loop.time() >= next_prune:
                await self.prune()
                next_prune = loop.time() + self._prune_every
            await asyncio.sleep(self._interval)

    def _lively(self) -> list[tuple[str, int]]:
        """The instances to read at every interval: heard from lately, or followed.

        Looks only at those heard from lately and at followed jobs, not at every instance:
        this runs twenty times a second.
        """
        recent = time.monotonic() - _LIVELY_SECONDS
        for key, logs in list(self._heard.items()):
            if logs.heard_at < recent:
                del self._heard[key]
        keys = list(self._heard)
        followed = set(self.fanout.followed_jobs())
        if followed:
            keys += [k for k in self._logs if k[0] in followed and k not in self._heard]
        return keys

    async def prune(self) -> None:
        keep = {path for logs in self._logs.values() for path in logs.files()}
        with contextlib.suppress(OSError):
            await self._blocking(lambda: prune(self._root, keep, self._retention, time.time()))

    async def flush(self, only: list[tuple[str, int]] | None = None) -> None:
        """Journal everything written so far (by the `only` instances, if given) and hand it
        to the followers."""
        async with self._reading:
            if only is None:
                logs = list(self._logs.items())
            else:
                logs = [(key, self._logs[key]) for key in only if key in self._logs]
            if not logs:
                return
            max_bytes, files = self._max_bytes, self._files

            def read_all() -> list[list[LogLine]]:
                now = datetime.now(UTC)
                results: list[list[LogLine]] = []
                for _, log in logs:
                    try:
                        results.append(log._read(now, max_bytes, files))
                    except OSError:
                        results.append([])
                return results

            try:
                batches = await self._blocking(read_all)
            except OSError:
                return
        by_job: dict[str, list[LogLine]] = {}
        heard_at = time.monotonic()
        for (key, log), lines in zip(logs, batches, strict=True):
            job_id = key[0]
            if lines:
                log.heard_at = heard_at
                if self._logs.get(key) is log:
                    self._heard[key] = log
                log._extend(lines)
                by_job.setdefault(job_id, []).extend(lines)
        for job_id, lines in by_job.items():
            self.fanout.publish(job_id, lines)
