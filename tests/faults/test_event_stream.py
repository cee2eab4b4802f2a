"""A GraphQL subscriber while Nomad's event stream breaks: dropped mid-stream, silent, or
Nomad gone for a while. The scheduler reconnects and reconciles, and the subscriber keeps
getting events with cursors that go up by one (nothing lost), no instance reported twice
in the same state (nothing duplicated), and every instance's final state."""

from __future__ import annotations

import pytest

from tests.faults.helpers import Console, check_stream, collect_events, latest, wait_until
from tests.releases import V1

DEPLOYED = {
    ("web", 1): ("RUNNING", True),
    ("jobs", 1): ("RUNNING", None),
    ("jobs", 2): ("RUNNING", None),
}
SCALED_TO_3 = DEPLOYED | {("web", 2): ("RUNNING", True), ("web", 3): ("RUNNING", True)}


async def _connections_beyond(console: Console, count: int) -> None:
    stream = console.scheduler.event_stream
    assert stream is not None
    await wait_until(
        lambda: stream.connections > count and stream.connected,
        within=10,
        message="the Nomad event stream to reconnect",
    )


def _connections(console: Console) -> int:
    stream = console.scheduler.event_stream
    assert stream is not None
    return stream.connections


@pytest.mark.parametrize("frames", [None, 0, 1, 3], ids=["no-drop", "0", "1", "3"])
async def test_subscriber_keeps_receiving_after_the_nomad_stream_drops(
    console: Console, frames: int | None
) -> None:
    """After `frames` more frames the stream ends (None: it does not, for comparison)."""
    async with collect_events(console, after="0") as sub:
        await console.ok("deployApp", name="hello", metaVersion=V1)
        await console.settle()
        await sub.wait_for_state(DEPLOYED)
        connections = _connections(console)

        if frames is not None:
            console.nomad.faults.drop_stream_after(frames)
        await console.ok("scaleProc", app="hello", proc="web", numInstances=3)
        await console.settle()

        await sub.wait_for_state(SCALED_TO_3)
        if frames is not None:
            await _connections_beyond(console, connections)
        else:
            assert _connections(console) == connections
        check_stream(sub.events, first=1)


async def test_subscriber_keeps_receiving_through_a_silent_nomad_stream(
    console: Console,
) -> None:
    async with collect_events(console, after="0") as sub:
        await console.ok("deployApp", name="hello", metaVersion=V1)
        await console.settle()
        await sub.wait_for_state(DEPLOYED)
        connections = _connections(console)

        # No frame and no heartbeat: the scheduler gives up on the connection after its
        # heartbeat timeout and learns what happened from the reconcile of the next one.
        console.nomad.faults.stream_silent = True
        await console.ok("scaleProc", app="hello", proc="web", numInstances=2)
        await console.settle()
        await sub.wait_for_state(DEPLOYED | {("web", 2): ("RUNNING", True)})
        await _connections_beyond(console, connections)

        console.nomad.faults.stream_silent = False
        await console.ok("scaleProc", app="hello", proc="web", numInstances=3)
        await console.settle()
        await sub.wait_for_state(SCALED_TO_3)
        check_stream(sub.events, first=1)


async def test_subscriber_sees_what_changed_while_nomad_was_away_and_its_correction(
    console: Console,
) -> None:
    async with collect_events(console, after="0") as sub:
        await console.ok("deployApp", name="hello", metaVersion=V1)
        await console.settle()
        await sub.wait_for_state(DEPLOYED)
        connections = _connections(console)

        # Nomad is unreachable (its streams cut), and meanwhile someone scales web there.
        console.nomad.faults.refuse_connections()
        console.fake.scale("default", "hello.web.web", {"Count": 2, "Target": {"Group": "web"}})
        await console.settle()
        console.nomad.faults.accept_connections()

        await sub.wait_for_state(DEPLOYED | {("web", 2): ("RUNNING", True)})
        await _connections_beyond(console, connections)
        assert not await console.converged()

        report = await console.reconcile()
        assert report.scaled == ["hello.web.web"]
        await console.settle()
        await sub.wait_for_state(DEPLOYED | {("web", 2): ("EXITED", True)})
        assert await console.converged()
        check_stream(sub.events, first=1)


async def test_a_client_resuming_after_a_stream_drop_misses_nothing(console: Console) -> None:
    async with collect_events(console, after="0") as first:
        await console.ok("deployApp", name="hello", metaVersion=V1)
        await console.settle()
        await first.wait_for_state(DEPLOYED)
        seen = list(first.events)

    # The client is away while Nomad's stream drops and web is scaled.
    connections = _connections(console)
    console.nomad.faults.drop_stream_after(1)
    await console.ok("scaleProc", app="hello", proc="web", numInstances=3)
    await console.settle()
    await _connections_beyond(console, connections)

    async with collect_events(console, after=seen[-1]["cursor"]) as resumed:
        await resumed.wait_for_state({("web", 2): ("RUNNING", True), ("web", 3): ("RUNNING", True)})
        assert latest(seen + resumed.events) == SCALED_TO_3
        check_stream(seen + resumed.events, first=1)
