"""When `deploy --wait` stops waiting on a canary rollout: once every proc's canaries wait
for a promotion or the proc is up, not as soon as the first proc's canaries wait."""

from __future__ import annotations

from typing import Any

import pytest

from client.errors import ClientError
from client.rollout import rollout_standing
from tests.releases import V1, V2


def _instance(number: int, release: str, status: str = "RUNNING") -> dict[str, Any]:
    return {"number": number, "status": status, "release": release, "restarts": 0}


def _proc(name: str, canary: dict[str, Any] | None, *instances: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "type": "WEB" if name == "web" else "WORKER",
        "numInstances": 2,
        "health": "HEALTHY",
        "rollout": "RUNNING" if canary else "SUCCESSFUL",
        "runningReleases": sorted({i["release"] for i in instances}),
        "metaVersion": V2,
        "lastError": None,
        "deployed": True,
        "canary": canary,
        "instances": list(instances),
    }


def _canary(*, healthy: int, awaiting: bool) -> dict[str, Any]:
    return {
        "desired": 1,
        "placed": 1,
        "healthy": healthy,
        "promoted": False,
        "autoPromote": False,
        "awaitingPromotion": awaiting,
    }


def _app(*procs: dict[str, Any]) -> dict[str, Any]:
    return {"name": "hello", "status": "DEPLOYING", "procs": list(procs)}


WEB_WAITS = _proc(
    "web", _canary(healthy=1, awaiting=True), _instance(1, V2), _instance(2, V1), _instance(1, V1)
)


def test_a_proc_whose_canary_still_starts_keeps_the_rollout_going() -> None:
    # What CI saw: web's canary was healthy and waited, jobs' had not passed its checks yet.
    jobs_starting = _proc(
        "jobs", _canary(healthy=0, awaiting=False), _instance(1, V2, "PENDING"), _instance(2, V1)
    )
    awaiting, waiting = rollout_standing(_app(WEB_WAITS, jobs_starting))
    assert awaiting == ["web"]
    assert waiting == ["jobs 0/2"]  # no jobs instance runs the new release yet


def test_the_rollout_stands_once_every_procs_canaries_wait() -> None:
    jobs_waits = _proc(
        "jobs", _canary(healthy=1, awaiting=True), _instance(1, V2), _instance(2, V1)
    )
    assert rollout_standing(_app(WEB_WAITS, jobs_waits)) == (["web", "jobs"], [])


def test_a_deploying_app_without_waiting_canaries_is_still_deploying() -> None:
    web_up = _proc("web", None, _instance(1, V2), _instance(2, V2))
    web_up["runningReleases"] = [V2]
    assert rollout_standing(_app(web_up)) == ([], ["hello deploying"])


def test_a_failing_proc_stops_the_wait_even_beside_waiting_canaries() -> None:
    jobs_failing = _proc("jobs", None, _instance(1, V2, "FAILED"))
    jobs_failing |= {"health": "FAILING", "lastError": "exit status 3"}
    with pytest.raises(ClientError) as stopped:
        rollout_standing(_app(WEB_WAITS, jobs_failing))
    assert stopped.value.code == "ROLLOUT_STOPPED"
    assert "jobs: exit status 3" in str(stopped.value)
