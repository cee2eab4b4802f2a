"""Rollout metrics from real processes (local backend): a rollout that stops and one that
finishes, counted from the event bus as the supervisor reports them."""

from __future__ import annotations

import asyncio
import time

from tests.e2e.test_rollouts import (
    SLEEPER,
    V1,
    V2,
    Doors,
    _deployed,
    _publish,
    _until_proc,
    doors,
    lain_yaml,
)
from tests.server.test_metrics import sample

__all__ = ["doors"]  # the fixture, shared with the rollout tests

ROLLOUTS = "lain_console_rollouts_total"


async def _metrics_until(doors: Doors, **counts: float) -> str:
    deadline = time.monotonic() + 30
    while True:
        response = await doors.client.get("/metrics")
        assert response.status_code == 200, response.text
        seen = {t: sample(response.text, ROLLOUTS, transition=t) for t in counts}
        if seen == counts:
            return response.text
        assert time.monotonic() < deadline, f"rollouts {seen}, expected {counts}"
        await asyncio.sleep(0.1)


async def test_an_update_counts_a_stopped_and_a_finished_rollout(doors: Doors) -> None:
    await _deployed(doors, V1, lain_yaml(worker=SLEEPER))
    before = await doors.client.get("/metrics")
    assert sample(before.text, ROLLOUTS) == 0  # a first deploy replaces nothing
    await _publish(doors, V2, lain_yaml(healthcheck="/missing"))
    response = await doors.client.put("/api/v1/apps/hello/", json={"meta_version": V2})
    assert response.status_code == 202, response.text
    # web's new instance never passes its health check (stopped); the worker rolls (finished).
    await _until_proc(doors, "web", lambda proc: proc["rollout"] == "STOPPED")
    await _until_proc(doors, "jobs", lambda proc: proc["rollout"] == "NONE")
    await _metrics_until(doors, started=2, stopped=1, finished=1)
