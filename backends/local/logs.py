"""Instance output: append-only files written by the process itself, tailed into a ring.

Processes write stdout and stderr straight into their files (opened O_APPEND at spawn), so
output keeps landing while no console is attached and survives a console restart. One pump
task tails every file from a worker thread and keeps the most recent lines of each
instance in memory.

Rotation is "copy, then truncate": the writer keeps its file descriptor, so the file cannot
be renamed away from under it; after the copy to `<file>.1` the file is truncated, and
O_APPEND makes the next write land at the new end. Lines written between the copy and the
truncation are lost, and a file grows past its cap while no console runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from backends.local.threads import ThreadBridge

__all__ = ["InstanceLogs", "LogLine", "LogPump"]

# When a tail first opens a file it starts this far from the end, so a large old log is
# not read in full just to fill the ring.
_BACKLOG_BYTES = 64 * 1024
# A "line" longer than this without a newline is cut, so the buffer stays bounded.
_MAX_LINE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class LogLine:
    stream: str  # "stdout" or "stderr"
    text: str


class _Tail:
    """Reading position in one log file; touched only by the pump's worker thread."""

    def __init__(self, stream: str, path: Path) -> None:
        self.stream = stream
        self.path = path
        self._offset: int | None = None
        self._partial = b""

    def read(self, max_bytes: int) -> list[str]:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        skip_first = False
        if self._offset is None:
            self._offset = max(0, size - _BACKLOG_BYTES)
            skip_first = self._offset > 0
        if size < self._offset:  # truncated by someone else: start over
            self._offset, self._partial = 0, b""
        data = b""
        if size > self._offset:
            with self.path.open("rb") as file:
                file.seek(self._offset)
                data = file.read(size - self._offset)
            self._offset += len(data)
        if max_bytes and self._offset >= max_bytes:
            self._rotate()
        chunks = (self._partial + data).split(b"\n")
        self._partial = chunks.pop()
        if len(self._partial) > _MAX_LINE_BYTES:
            chunks.append(self._partial)
            self._partial = b""
        if skip_first and chunks:
            chunks.pop(0)  # started mid-file: the first piece is the tail of a line
        return [chunk.decode("utf-8", "replace").rstrip("\r") for chunk in chunks]

    def _rotate(self) -> None:
        backup = self.path.with_name(self.path.name + ".1")
        tmp = self.path.with_name(self.path.name + ".1.tmp")
        shutil.copyfile(self.path, tmp)
        os.replace(tmp, backup)
        os.truncate(self.path, 0)
        self._offset = 0


class InstanceLogs:
    """The log files and the in-memory ring of one instance slot (shared by its processes)."""

    def __init__(self, directory: Path, number: int, *, ring_lines: int) -> None:
        self.stdout_path = directory / f"{number}.stdout.log"
        self.stderr_path = directory / f"{number}.stderr.log"
        self._ring: deque[LogLine] = deque(maxlen=ring_lines)
        self._tails = (_Tail("stdout", self.stdout_path), _Tail("stderr", self.stderr_path))

    def lines(self, limit: int | None = None) -> list[LogLine]:
        """The most recent lines, oldest first; at most `limit` when given."""
        lines = list(self._ring)
        if limit is None:
            return lines
        return lines[-limit:] if limit > 0 else []

    def _read(self, max_bytes: int) -> list[LogLine]:
        return [LogLine(tail.stream, text) for tail in self._tails for text in tail.read(max_bytes)]

    def _extend(self, lines: list[LogLine]) -> None:
        self._ring.extend(lines)


class LogPump:
    """Tails the files of every attached instance every `interval` seconds.

    Args:
        blocking: runs a blocking callable in a worker thread (the backend's bridge).
        interval: seconds between two reads of the files.
        max_bytes: a file reaching this size is rotated; 0 means never.
        ring_lines: lines kept in memory per instance.
    """

    def __init__(
        self,
        *,
        blocking: ThreadBridge,
        interval: float = 0.2,
        max_bytes: int = 10 * 1024 * 1024,
        ring_lines: int = 1000,
    ) -> None:
        self._blocking = blocking
        self._interval = interval
        self._max_bytes = max_bytes
        self._ring_lines = ring_lines
        self._logs: dict[tuple[str, int], InstanceLogs] = {}
        # One read at a time: a tail's position is not safe to share between threads.
        self._reading = asyncio.Lock()

    def attach(self, job_id: str, number: int, directory: Path) -> InstanceLogs:
        """The logs of instance `number` of `job_id`, tailed from now on (idempotent)."""
        key = (job_id, number)
        if key not in self._logs:
            self._logs[key] = InstanceLogs(directory, number, ring_lines=self._ring_lines)
        return self._logs[key]

    def detach(self, job_id: str, number: int) -> None:
        self._logs.pop((job_id, number), None)

    def get(self, job_id: str, number: int) -> InstanceLogs | None:
        return self._logs.get((job_id, number))

    async def run(self) -> None:
        """Tail forever; cancel the task to stop."""
        while True:
            await self.flush()
            await asyncio.sleep(self._interval)

    async def flush(self) -> None:
        """Read everything written so far into the rings."""
        async with self._reading:
            logs = list(self._logs.values())
            max_bytes = self._max_bytes

            def read_all() -> list[list[LogLine]]:
                results: list[list[LogLine]] = []
                for log in logs:
                    try:
                        results.append(log._read(max_bytes))
                    except OSError:
                        results.append([])
                return results

            with contextlib.suppress(OSError):
                for log, lines in zip(logs, await self._blocking(read_all), strict=True):
                    log._extend(lines)
