"""Placement is global: LAIN's lain.yaml has no proc field for datacenters, node pools,
priority or spreading, so those are the operator's LAIN_CONSOLE_NOMAD_* settings, read by
the server and carried into every job it registers (lain.yaml `filters` are the per-proc
part, see test_jobs.py)."""

from __future__ import annotations

from dataclasses import replace

from backends.nomad import NomadScheduler
from server.scheduler import make_scheduler
from server.settings import load_settings
from tests.backends.nomad.helpers import make_job
from tests.fakes.nomad import FakeNomad
from tests.fakes.nomad_server import FakeNomadServer


async def test_placement_settings_reach_every_registered_job(
    nomad_server: FakeNomadServer, fake: FakeNomad
) -> None:
    environ = {
        "NOMAD_ADDR": nomad_server.url,
        "LAIN_CONSOLE_NOMAD_DATACENTERS": "dc1,dc2",
        "LAIN_CONSOLE_NOMAD_NODE_POOL": "apps",
        "LAIN_CONSOLE_NOMAD_PRIORITY": "70",
        "LAIN_CONSOLE_NOMAD_DISTINCT_HOSTS": "true",
        "LAIN_CONSOLE_NOMAD_MAX_PARALLEL": "2",
    }
    scheduler = make_scheduler(replace(load_settings({}), backend="nomad"), environ)
    assert isinstance(scheduler, NomadScheduler)
    try:
        await scheduler.apply(make_job(proc="web"))
        await scheduler.apply(make_job(proc="jobs", proc_type="worker"))
    finally:
        await scheduler.__aexit__(None, None, None)

    for job_id in ("hello.web.web", "hello.worker.jobs"):
        spec = fake.job("default", job_id).spec
        assert (spec["Datacenters"], spec["NodePool"], spec["Priority"]) == (
            ["dc1", "dc2"],
            "apps",
            70,
        )
        assert spec["Constraints"] == [{"Operand": "distinct_hosts", "RTarget": "true"}]
        assert spec["Update"]["MaxParallel"] == 2
