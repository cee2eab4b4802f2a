"""The app's own reconciler loop (a round every second here) after Nomad was down and
came back having lost every job, as a cluster restored from nothing would: the mutation
tried meanwhile is refused before anything is stored, and the loop alone puts the desired
jobs back while subscribers see the instances start again."""

from __future__ import annotations

import pytest

from tests.faults.helpers import Console, assert_clear, check_stream, collect_events, wait_until
from tests.releases import V1

RUNNING = {
    ("web", 1): ("RUNNING", True),
    ("jobs", 1): ("RUNNING", None),
    ("jobs", 2): ("RUNNING", None),
}


@pytest.mark.parametrize("reconcile_interval", [1])
async def test_nomad_back_without_its_jobs_is_refilled_by_the_reconciler_loop(
    console: Console,
) -> None:
    async with collect_events(console, after="0") as sub:
        await console.ok("deployApp", name="hello", metaVersion=V1)
        await console.settle()
        await sub.wait_for_state(RUNNING)
        desired = await console.app()

        console.nomad.faults.refuse_connections()
        payload = await console.mutate("scaleProc", app="hello", proc="web", numInstances=2)
        [error] = payload["errors"]
        assert error["code"] == "BACKEND_UNAVAILABLE"
        assert_clear(error["message"], nomad_url=console.nomad.url, pattern="Connection refused")
        assert await console.app() == desired

        # Back on the same address, empty, and stepping on its own like a real cluster.
        mark = len(sub.events)
        console.nomad.reset()
        console.nomad.auto_settle = 0.05
        assert console.nomad_jobs() == {}

        await wait_until(console.converged, within=10, message="the loop to restore the jobs")
        await sub.wait_for_state(RUNNING, since=mark)
        # Seen going away and starting again, not merely left as they were.
        kinds = [(e["kind"], e["instance"] and e["instance"]["status"]) for e in sub.events[mark:]]
        assert kinds.count(("PROC_REMOVED", None)) == 2
        assert kinds.count(("INSTANCE", "PENDING")) == 3
        assert await console.app() == desired
        check_stream(sub.events, first=1)
