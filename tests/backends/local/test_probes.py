"""The health probe schedule: often while an instance starts or fails, every `interval`
(jittered) once it has been healthy for a while, and a failure still seen in time."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from backends.local.health import PROBE_TIMEOUT, ProbeSchedule, probe_http
from tests.backends.local.helpers import (
    all_up,
    make_job,
    scheduler,
    script,
    wait_for_instances,
    wait_until,
)

_MOODY_WEB = """
import http.server, os
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(500 if os.path.exists("sick") else 200)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


def test_a_settled_instance_is_probed_every_interval() -> None:
    schedule = ProbeSchedule(interval=10.0, jitter=0.1, random=lambda: 0.5)
    assert schedule.delay(passed=True, settled=True) == pytest.approx(10.0)


def test_jitter_stays_within_its_fraction_either_way() -> None:
    lowest = ProbeSchedule(interval=10.0, jitter=0.1, random=lambda: 0.0)
    highest = ProbeSchedule(interval=10.0, jitter=0.1, random=lambda: 1.0)
    assert lowest.delay(passed=True, settled=True) == pytest.approx(9.0)
    assert highest.delay(passed=True, settled=True) == pytest.approx(11.0)
    seeded = random.Random(18)
    spread = ProbeSchedule(interval=10.0, jitter=0.1, random=seeded.random)
    delays = [spread.delay(passed=True, settled=True) for _ in range(1000)]
    assert all(9.0 <= d <= 11.0 for d in delays)
    assert len({round(d, 3) for d in delays}) > 100, "spread, not in step"


def test_probes_back_off_once_the_instance_has_been_healthy_a_while() -> None:
    schedule = ProbeSchedule(interval=10.0, fast=1.0, starting=0.25, jitter=0, settle=10.0)
    starting = schedule.delay(passed=False, settled=False)
    settling = schedule.delay(passed=True, settled=False)
    settled = schedule.delay(passed=True, settled=True)
    assert (starting, settling, settled) == (0.25, 1.0, 10.0)


def test_no_wait_exceeds_a_short_interval() -> None:
    schedule = ProbeSchedule(interval=0.1, jitter=0)
    assert {
        schedule.delay(passed=passed, settled=settled)
        for passed in (False, True)
        for settled in (False, True)
    } == {0.1}


def test_the_documented_detection_time() -> None:
    schedule = ProbeSchedule(interval=10.0, jitter=0.1)
    assert schedule.detection_seconds() == pytest.approx(11.0 + PROBE_TIMEOUT)


@dataclass(frozen=True, slots=True)
class _RecordedSchedule(ProbeSchedule):
    """Notes what the supervisor told the schedule at each probe."""

    asked: list[tuple[bool, bool]] = field(default_factory=list, compare=False)

    def delay(self, *, passed: bool, settled: bool) -> float:
        self.asked.append((passed, settled))
        return ProbeSchedule.delay(self, passed=passed, settled=settled)


async def test_the_supervisor_probes_fast_until_settled_and_then_sees_a_failure_in_time(
    data_dir: Path, marker: str
) -> None:
    probes = _RecordedSchedule(interval=0.5, fast=0.05, starting=0.05, settle=0.5)
    job = make_job(
        marker, proc="web", proc_type="web", cmd=script(_MOODY_WEB), port=80, healthcheck="/"
    )
    async with scheduler(data_dir, probes=probes) as sched:
        await sched.apply(job)
        await wait_for_instances(sched, job.job_id, all_up)
        await wait_until(lambda: (True, True) in probes.asked, what="the instance to settle")
        first_settled = probes.asked.index((True, True))
        assert probes.asked[0] == (False, False)
        assert (True, False) in probes.asked[:first_settled], "fast while settling"
        assert (True, False) not in probes.asked[first_settled:], "stays settled while healthy"

        loop = asyncio.get_running_loop()
        (data_dir / "apps" / "hello" / "sick").touch()
        turned = loop.time()
        await wait_for_instances(
            sched, job.job_id, lambda i: i[0].healthy is False, what="unhealthy"
        )
        assert loop.time() - turned <= probes.detection_seconds()


async def test_an_http_probe_reads_only_the_status_line(tmp_path: Path) -> None:
    answers = iter([b"HTTP/1.0 302 Found\r\n\r\n", b"HTTP/1.1 503 No\r\n\r\n", b"SSH-2.0\r\n"])
    requests: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(next(answers))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        assert await probe_http(port, "/health", seconds=5) is None  # a redirect is an answer
        assert await probe_http(port, "/a b", seconds=5) == "GET /a b: HTTP 503"
        assert await probe_http(port, "/", seconds=5) == "GET /: not an HTTP answer"
    assert requests[1].startswith(b"GET /a%20b HTTP/1.1\r\nHost: 127.0.0.1:")
    refused = await probe_http(port, "/", seconds=5)
    assert refused is not None
    assert refused.startswith("GET /: ")
