"""Health checks of local instances: HTTP for web procs with a health check path, TCP else.

A probe returns None when the instance is healthy and a short reason when it is not; it
never raises, so a flaky app cannot break its supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from enum import StrEnum

import httpx

from backends.types import ProcJob

__all__ = ["CheckKind", "check_kind", "probe", "probe_http", "probe_tcp"]

# Instances are probed where they run, on this machine.
CHECK_HOST = "127.0.0.1"

# httpx logs every request at INFO; for probes that is a line per instance per interval.
# The supervisor logs a probe's outcome only when the instance's health changes.
_probing: contextvars.ContextVar[bool] = contextvars.ContextVar("probing", default=False)


class _QuietProbes(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _probing.get()


logging.getLogger("httpx").addFilter(_QuietProbes())


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


async def probe(
    kind: CheckKind, client: httpx.AsyncClient, port: int, path: str, *, seconds: float
) -> str | None:
    """Run one check of `kind`; None when healthy, else why not."""
    try:
        if kind is CheckKind.HTTP:
            return await probe_http(client, port, path, seconds=seconds)
        return await probe_tcp(port, seconds=seconds)
    except Exception as exc:  # a probe must never take the supervisor down
        return f"{type(exc).__name__}: {exc}"


async def probe_http(
    client: httpx.AsyncClient, port: int, path: str, *, seconds: float
) -> str | None:
    """GET http://127.0.0.1:<port><path>; a 2xx or 3xx answer is healthy, as in LAIN."""
    if not path.startswith("/"):
        path = "/" + path
    probing = _probing.set(True)
    try:
        response = await client.get(f"http://{CHECK_HOST}:{port}{path}", timeout=seconds)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return f"GET {path}: {type(exc).__name__}: {exc}".rstrip(": ")
    finally:
        _probing.reset(probing)
    if 200 <= response.status_code < 400:
        return None
    return f"GET {path}: HTTP {response.status_code}"


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
