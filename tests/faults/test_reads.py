"""Reads while Nomad is down: the stored state still reads, and the running state fails
in words that say Nomad is the problem, never as if the procs were not deployed."""

from __future__ import annotations

import pytest

from tests.faults.helpers import Console, switch_on, wait_until
from tests.releases import V1

INSTANCES = '{ app(name: "hello") { status procs { name numInstances instances { status } } } }'


async def _deploy(console: Console) -> None:
    await console.ok("deployApp", name="hello", metaVersion=V1)
    await console.settle()


async def test_desired_state_reads_while_nomad_is_down(console: Console) -> None:
    await _deploy(console)
    before = await console.app()
    switch_on(console.nomad, "refused")
    assert await console.app() == before


async def test_graphql_instances_while_nomad_is_down_is_a_coded_backend_error(
    console: Console,
) -> None:
    await _deploy(console)
    switch_on(console.nomad, "refused")
    # Until its event stream breaks the console still answers from it, as it last knew.
    stream = console.scheduler.event_stream
    assert stream is not None
    await wait_until(lambda: not stream.connected, message="the event stream to break")

    response = await console.http.post("/graphql", json={"query": INSTANCES})

    body = response.json()
    errors = body["errors"]
    assert errors
    for error in errors:
        assert error.get("extensions", {}).get("code") == "BACKEND_UNAVAILABLE", error
        assert f"Nomad at {console.nomad.url} is unreachable" in error["message"]
    # The stored app still reads: only the fields that need Nomad are null, each with
    # its error on its own path.
    assert body["data"]["app"] == {
        "status": "DEPLOYED",
        "procs": [
            {"name": "web", "numInstances": 1, "instances": None},
            {"name": "jobs", "numInstances": 2, "instances": None},
        ],
    }
    assert sorted(tuple(error["path"]) for error in errors) == [
        ("app", "procs", 0, "instances"),
        ("app", "procs", 1, "instances"),
    ]


async def test_rest_get_proc_while_nomad_is_down_does_not_say_it_is_not_deployed(
    console: Console,
) -> None:
    await _deploy(console)
    switch_on(console.nomad, "refused")
    stream = console.scheduler.event_stream
    assert stream is not None
    await wait_until(lambda: not stream.connected, message="the event stream to break")

    response = await console.http.get("/api/v1/apps/hello/procs/web/")

    body = response.json()
    assert "not deployed" not in body["msg"], body["msg"]
    assert response.status_code == 500
    assert body["msg"].startswith("fatal error when get app hello proc web:\n")


@pytest.mark.parametrize("read_cache_bytes", [0], ids=["uncached"])
async def test_steady_state_reads_make_no_nomad_call(console: Console) -> None:
    # The event stream already holds what Nomad runs: reads through either door answer
    # from it (22 calls for a page of 10 apps x 2 procs before).
    await _deploy(console)

    async def a_round_without_nomad() -> bool:
        # A round in which the stream reconnected (a loaded machine can miss a heartbeat)
        # may ask Nomad, rightly: the next one must not.
        before = len(console.nomad.seen)
        for _ in range(3):
            response = await console.http.post("/graphql", json={"query": INSTANCES})
            procs = response.json()["data"]["app"]["procs"]
            assert [len(p["instances"]) for p in procs] == [1, 2]
            assert (await console.http.get("/api/v1/apps/hello/procs/web/")).status_code == 200
            assert (await console.http.get("/api/v1/apps/")).status_code == 200
        # The health watch's look at the checks is on its own clock, not a read's.
        calls = [s.path for s in console.nomad.seen[before:] if not s.path.endswith("/checks")]
        return calls == []

    await wait_until(a_round_without_nomad, within=20, message="reads without Nomad calls")
    assert console.scheduler.reads_from_events >= 9
