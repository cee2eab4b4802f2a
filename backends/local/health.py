"""Health checks of local instances: HTTP for web procs with a health check path, TCP else,
and the schedule they run on.

A probe returns None when the instance is healthy and a short reason when it is not; it
never raises, so a flaky app cannot break its supervisor. Probes speak to 127.0.0.1 over a
plain socket (one request, the status line read, the connection closed): a few hundred of
them a minute must cost the console next to nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import quote

from backends.types import ProcJob

__all__ = [
    "PROBE_TIMEOUT",
    "CheckKind",
    "ProbeSchedule",
    "check_kind",
    "probe",
    "probe_http",
    "probe_tcp",
]

# Instances are probed where they run, on this machine.
CHECK_HOST = "127.0.0.1"
PROBE_TIMEOUT = 2.0  # seconds one probe may take before it counts as failed


@dataclass(frozen=True, slots=True)
class ProbeSchedule:
    """How long to wait before probing an instance again.

    - `starting`: the process has not passed a first check yet (a rollout waits for it);
    - `fast`: it fails its check, or has passed it for less than `settle` seconds (the
      settling covers a rollout's minimum healthy time, where a relapse must be seen soon);
    - `interval`: it has been healthy for `settle` seconds or more;
    - `interval` x `relaxed`: it has been healthy for `relax_after` seconds or more.

    Each wait is spread by up to `jitter` (a fraction) either way, so instances started
    together do not probe in step. A check that starts failing is therefore seen within
    `detection_seconds()` (LAIN's docker checks took three failures 10 s apart). The idle
    cost is one probe per instance every `interval` x `relaxed`, whatever their number.
    """

    interval: float = 10.0
    fast: float = 1.0
    starting: float = 0.25
    settle: float = 10.0
    relax_after: float = 60.0
    relaxed: float = 2.0
    jitter: float = 0.1
    # Uniform in [0, 1): tests pass a fixed value.
    random: Callable[[], float] = field(default=random.random, compare=False)

    def delay(self, *, passed: bool, healthy_for: float | None, settle: float = 0.0) -> float:
        """Seconds until the next probe of an instance that has `passed` a first check and
        has passed every check since `healthy_for` seconds (None: its last one failed);
        `settle` lengthens the settling (a job's setup_time)."""
        settle = max(self.settle, settle)
        if not passed:
            base = min(self.interval, self.starting)
        elif healthy_for is None or healthy_for < settle:
            base = min(self.interval, self.fast)
        elif healthy_for < max(settle, self.relax_after):
            base = self.interval
        else:
            base = self.interval * self.relaxed
        return base * (1 + self.jitter * (2 * self.random() - 1))

    def detection_seconds(self) -> float:
        """The longest a failing check of a healthy instance goes unnoticed: the longest
        wait, then a probe that runs into its timeout."""
        return self.interval * self.relaxed * (1 + self.jitter) + PROBE_TIMEOUT


class CheckKind(StrEnum):
    HTTP = "http"  # GET the proc's health check path
    TCP = "tcp"  # connect to the proc's port


def check_kind(job: ProcJob) -> CheckKind | None:
    """HTTP for web procs with a health check path, TCP for others with a TCP port."""
    if job.port is None:
        return None
    if job.proc_type == "web" and job.healthcheck:
        return CheckKind.HTTP
    return CheckKind.TCP if job.port_protocol == "tcp" else None


async def probe(kind: CheckKind, port: int, path: str, *, seconds: float) -> str | None:
    """Run one check of `kind`; None when healthy, else why not."""
    try:
        if kind is CheckKind.HTTP:
            return await probe_http(port, path, seconds=seconds)
        return await probe_tcp(port, seconds=seconds)
    except Exception as exc:  # a probe must never take the supervisor down
        return f"{type(exc).__name__}: {exc}"


async def probe_http(port: int, path: str, *, seconds: float) -> str | None:
    """GET http://127.0.0.1:<port><path>; a 2xx or 3xx answer is healthy, as in LAIN.

    Redirects are not followed (a 3xx is an answer). Only the status line is read.
    """
    if not path.startswith("/"):
        path = "/" + path
    target = quote(path, safe="/?&=%:@!$'()*+,;~-._")  # no space or line break gets through
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {CHECK_HOST}:{port}\r\n"
        "User-Agent: lain-console-health\r\nConnection: close\r\n\r\n"
    ).encode()
    try:
        async with asyncio.timeout(seconds):
            reader, writer = await asyncio.open_connection(CHECK_HOST, port)
            try:
                writer.write(request)
                status_line = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except TimeoutError:
        return f"GET {path}: timed out after {seconds:g}s"
    except OSError as exc:
        return f"GET {path}: {(exc.strerror or str(exc)).lower()}"
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return f"GET {path}: not an HTTP answer"
    status = int(parts[1])
    if 200 <= status < 400:
        return None
    return f"GET {path}: HTTP {status}"


async def probe_tcp(port: int, *, seconds: float) -> str | None:
    """Connect to 127.0.0.1:<port>; accepting the connection is healthy."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(CHECK_HOST, port), seconds)
    except TimeoutError:
        return f"tcp {port}: timed out"
    except OSError as exc:
        return f"tcp {port}: {exc.strerror or exc}"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None
