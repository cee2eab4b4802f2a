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
    assert schedule.delay(passed=True, healthy_for=10.0) == pytest.approx(10.0)
    assert schedule.delay(passed=True, healthy_for=59.9) == pytest.approx(10.0)


def test_jitter_stays_within_its_fraction_either_way() -> None:
    lowest = ProbeSchedule(interval=10.0, jitter=0.1, random=lambda: 0.0)
    highest = ProbeSchedule(interval=10.0, jitter=0.1, random=lambda: 1.0)
    assert lowest.delay(passed=True, healthy_for=30) == pytest.approx(9.0)
    assert highest.delay(passed=True, healthy_for=30) == pytest.approx(11.0)
    seeded = random.Random(18)
    spread = ProbeSchedule(interval=10.0, jitter=0.1, random=seeded.random)
    delays = [spread.delay(passed=True, healthy_for=30) for _ in range(1000)]
    assert all(9.0 <= d <= 11.0 for d in delays)
    assert len({round(d, 3) for d in delays}) > 100, "spread, not in step"


def test_probes_back_off_the_longer_the_instance_stays_healthy() -> None:
    schedule = ProbeSchedule(
        interval=10.0, fast=1.0, starting=0.25, settle=10.0, relax_after=60.0, jitter=0
    )
    assert schedule.delay(passed=False, healthy_for=None) == 0.25
    assert schedule.delay(passed=True, healthy_for=None) == 1.0  # failing: watched closely
    assert schedule.delay(passed=True, healthy_for=9.9) == 1.0
    assert schedule.delay(passed=True, healthy_for=10.0) == 10.0
    assert schedule.delay(passed=True, healthy_for=60.0) == 20.0
    # A job's setup_time lengthens the settling.
    assert schedule.delay(passed=True, healthy_for=30.0, settle=45.0) == 1.0


def test_short_intervals_cap_every_stage_but_the_relaxed_one() -> None:
    schedule = ProbeSchedule(interval=0.1, jitter=0)
    assert {
        schedule.delay(passed=passed, healthy_for=healthy_for)
        for passed in (False, True)
        for healthy_for in (None, 0.0, 10.0)
    } == {0.1}


def test_the_documented_detection_time() -> None:
    schedule = ProbeSchedule(interval=10.0, jitter=0.1)
    assert schedule.detection_seconds() == pytest.approx(22.0 + PROBE_TIMEOUT)


@dataclass(frozen=True, slots=True)
class _RecordedSchedule(ProbeSchedule):
    """Notes the stage of every wait the supervisor asked for."""

    asked: list[str] = field(default_factory=list, compare=False)

    def delay(self, *, passed: bool, healthy_for: float | None, settle: float = 0.0) -> float:
        if not passed:
            stage = "starting"
        elif healthy_for is None or healthy_for < self.settle:
            stage = "fast"
        else:
            stage = "relaxed" if healthy_for >= self.relax_after else "interval"
        self.asked.append(stage)
        return ProbeSchedule.delay(self, passed=passed, healthy_for=healthy_for, settle=settle)


async def test_the_supervisor_backs_off_while_healthy_and_sees_a_failure_in_time(
    data_dir: Path, marker: str
) -> None:
    probes = _RecordedSchedule(
        interval=0.3, fast=0.05, starting=0.05, settle=0.5, relax_after=1.5, relaxed=2.0
    )
    job = make_job(
        marker, proc="web", proc_type="web", cmd=script(_MOODY_WEB), port=80, healthcheck="/"
    )
    async with scheduler(data_dir, probes=probes) as sched:
        await sched.apply(job)
        await wait_for_instances(sched, job.job_id, all_up)
        await wait_until(lambda: "relaxed" in probes.asked, what="the instance to relax")
        stages = list(dict.fromkeys(probes.asked))  # in the order first asked
        assert stages == ["starting", "fast", "interval", "relaxed"]
        relaxed_from = probes.asked.index("relaxed")
        assert set(probes.asked[relaxed_from:]) == {"relaxed"}, "stays relaxed while healthy"

        loop = asyncio.get_running_loop()
        (data_dir / "apps" / "hello" / "sick").touch()
        turned = loop.time()
        await wait_for_instances(
            sched, job.job_id, lambda i: i[0].healthy is False, what="unhealthy"
        )
        assert loop.time() - turned <= probes.detection_seconds()
        asked = len(probes.asked)
        await wait_until(lambda: len(probes.asked) > asked + 2, what="probes while failing")
        assert probes.asked[asked:][-1] == "fast", "a failing check is watched closely"


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
