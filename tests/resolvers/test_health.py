"""The health roll-up and the errors both doors show, rule by rule
(resolvers/readmodel/health.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from lainyaml import ProcSpec
from resolvers.readmodel.health import (
    Health,
    app_health,
    deploy_error,
    proc_error,
    proc_health,
    running_releases,
)
from resolvers.readmodel.views import (
    AppStatus,
    AppType,
    AppView,
    InstanceState,
    InstanceStatus,
    ProcState,
    ProcType,
    ProcView,
    RolloutStatus,
)
from tests.releases import V1, V2

NOW = datetime(2026, 1, 1, tzinfo=UTC)
WEB = ProcView(
    app="hello",
    name="web",
    type=ProcType.WEB,
    meta_version=V2,
    spec=ProcSpec(name="web", type=ProcType.WEB, section="web"),
    image="registry/hello:release",
    num_instances=2,
    cpu=0,
    memory="32m",
    memory_bytes=32 * 2**20,
    deployed=True,
    last_error="",
)
APP = AppView(
    name="hello",
    apptype=AppType.APP,
    meta_version=V2,
    status=AppStatus.DEPLOYED,
    last_error="",
    created_at=NOW,
    updated_at=NOW,
    giturl="",
)
UP = InstanceStatus.RUNNING


def _instance(
    number: int,
    status: InstanceStatus = UP,
    *,
    release: str = V2,
    healthy: bool | None = True,
    error: str = "",
) -> InstanceState:
    return InstanceState(
        job_id="hello.web.web",
        number=number,
        status=status,
        healthy=healthy,
        release=release,
        last_error=error,
    )


def _state(*instances: InstanceState, **changes: object) -> ProcState:
    state = ProcState(
        job_id="hello.web.web", exists=True, num_instances=2, instances=tuple(instances)
    )
    return replace(state, **changes)  # type: ignore[arg-type]


HEALTHY_STATE = _state(_instance(1), _instance(2))

PROC_CASES = [
    ("not deployed", replace(WEB, deployed=False), HEALTHY_STATE, Health.STOPPED),
    ("scaled to 0", replace(WEB, num_instances=0), _state(), Health.STOPPED),
    ("unknown state", WEB, None, None),
    ("no job", WEB, ProcState.missing("hello.web.web"), Health.FAILING),
    (
        "rolling",
        WEB,
        replace(HEALTHY_STATE, rollout=RolloutStatus.RUNNING),
        Health.ROLLING,
    ),
    (
        "stopped on request",
        WEB,
        _state(_instance(1, InstanceStatus.EXITED), _instance(2, InstanceStatus.EXITED)),
        Health.STOPPED,
    ),
    (
        "all failed",
        WEB,
        _state(_instance(1, InstanceStatus.FAILED), _instance(2, InstanceStatus.FAILED)),
        Health.FAILING,
    ),
    (
        "running but every check fails",
        WEB,
        _state(_instance(1, healthy=False), _instance(2, healthy=False)),
        Health.FAILING,
    ),
    (
        "starting",
        WEB,
        _state(_instance(1, InstanceStatus.PENDING), _instance(2, InstanceStatus.PENDING)),
        Health.ROLLING,
    ),
    (
        "one of two failed",
        WEB,
        _state(_instance(1), _instance(2, InstanceStatus.FAILED)),
        Health.DEGRADED,
    ),
    ("fewer than wanted, none failed", WEB, _state(_instance(1)), Health.ROLLING),
    (
        "one serving, one starting",
        WEB,
        _state(_instance(1), _instance(2, InstanceStatus.PENDING, healthy=False)),
        Health.ROLLING,
    ),
    ("nothing placed yet", WEB, _state(), Health.ROLLING),
    (
        "last rollout stopped",
        WEB,
        _state(_instance(1, release=V1), _instance(2, release=V1), rollout=RolloutStatus.STOPPED),
        Health.DEGRADED,
    ),
    (
        "another release runs",
        WEB,
        _state(_instance(1, release=V1), _instance(2)),
        Health.DEGRADED,
    ),
    ("last operation failed", replace(WEB, last_error="boom"), HEALTHY_STATE, Health.DEGRADED),
    ("healthy", WEB, HEALTHY_STATE, Health.HEALTHY),
]


@pytest.mark.parametrize(
    ("view", "state", "expected"),
    [case[1:] for case in PROC_CASES],
    ids=[case[0] for case in PROC_CASES],
)
def test_proc_health(view: ProcView, state: ProcState | None, expected: Health | None) -> None:
    assert proc_health(view, state) is expected


WORKER = replace(WEB, name="worker", type=ProcType.WORKER)
FAILED = _state(_instance(1, InstanceStatus.FAILED), _instance(2, InstanceStatus.FAILED))
ROLLING = replace(HEALTHY_STATE, rollout=RolloutStatus.RUNNING)
APP_CASES = [
    ("undeployed", replace(APP, meta_version=None), [], Health.STOPPED),
    ("every proc stopped", APP, [(replace(WEB, deployed=False), None)], Health.STOPPED),
    ("deploying", replace(APP, status=AppStatus.DEPLOYING), [(WEB, HEALTHY_STATE)], Health.ROLLING),
    ("every instance failed", APP, [(WEB, FAILED), (WORKER, FAILED)], Health.FAILING),
    ("one proc failing", APP, [(WEB, HEALTHY_STATE), (WORKER, FAILED)], Health.DEGRADED),
    ("one proc rolling", APP, [(WEB, ROLLING), (WORKER, HEALTHY_STATE)], Health.ROLLING),
    ("operation failed", replace(APP, last_error="x"), [(WEB, HEALTHY_STATE)], Health.DEGRADED),
    ("unknown", APP, [(WEB, None)], None),
    ("healthy", APP, [(WEB, HEALTHY_STATE), (WORKER, HEALTHY_STATE)], Health.HEALTHY),
]


@pytest.mark.parametrize(
    ("app", "procs", "expected"),
    [case[1:] for case in APP_CASES],
    ids=[case[0] for case in APP_CASES],
)
def test_app_health(
    app: AppView, procs: list[tuple[ProcView, ProcState | None]], expected: Health | None
) -> None:
    assert app_health(app, procs) is expected


def test_errors_come_from_the_scheduler_first_then_the_last_operation() -> None:
    stopped = replace(HEALTHY_STATE, last_error="rolling update stopped at instance 1")
    assert proc_error(replace(WEB, last_error="old"), stopped) == stopped.last_error
    assert proc_error(replace(WEB, last_error="refused"), HEALTHY_STATE) == "refused"
    assert proc_error(replace(WEB, last_error="refused"), None) == "refused"
    # The app's own error first, else the last proc (lain.yaml order) that has one.
    procs = [(WEB, stopped), (WORKER, HEALTHY_STATE)]
    assert deploy_error(APP, procs) == stopped.last_error
    assert deploy_error(replace(APP, last_error="update failed"), procs) == "update failed"


def test_running_releases_are_those_of_live_instances() -> None:
    state = _state(
        _instance(1, release=V2),
        _instance(2, release=V1),
        _instance(3, InstanceStatus.EXITED, release="1500000000-old"),
    )
    assert running_releases(state) == [V1, V2]
    assert running_releases(None) == []
