"""The event feed built from Nomad's event stream: order, cursors, dedupe, and every way a
stream can break (dropped, silent, refused, erroring), each followed by a reconcile."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from backends.nomad import NomadScheduler, NomadSettings
from backends.types import EventKind, InstanceAction, InstanceStatus, SchedulerEvent
from tests.backends.nomad.helpers import (
    HEARTBEAT_TIMEOUT,
    EventLog,
    in_step,
    instance_is,
    make_job,
    open_scheduler,
    reading_nomad,
    wait_until,
)
from tests.fakes.nomad import FakeNomad
from tests.fakes.nomad_server import FakeNomadServer

JOB_ID = "hello.web.web"
RUNNING = InstanceStatus.RUNNING


def _assert_ordered(events: list[SchedulerEvent]) -> None:
    cursors = [event.cursor for event in events]
    assert cursors == list(range(cursors[0], cursors[0] + len(cursors))), cursors


def _assert_no_repeats(events: list[SchedulerEvent]) -> None:
    """No instance snapshot is published twice in a row: replays publish nothing."""
    last: dict[tuple[str, int], object] = {}
    for event in events:
        if event.kind is EventKind.INSTANCE and event.instance is not None:
            key = (event.job_id, event.instance.number)
            assert last.get(key) != event.instance, f"repeated {event}"
            last[key] = event.instance


def _running_and_healthy(number: int) -> Callable[[SchedulerEvent], bool]:
    def check(event: SchedulerEvent) -> bool:
        return (
            instance_is(JOB_ID, number, RUNNING)(event)
            and event.instance is not None
            and event.instance.healthy is True
        )

    return check


async def _deploy(
    scheduler: NomadScheduler, fake: FakeNomad, log: EventLog, count: int = 2
) -> None:
    await scheduler.apply(make_job(num_instances=count))
    fake.settle()
    for number in range(1, count + 1):
        await log.wait_for(_running_and_healthy(number), message=f"instance {number} healthy")


async def test_deploy_events_arrive_in_order_with_increasing_cursors(
    connected: NomadScheduler, fake: FakeNomad, event_log: EventLog
) -> None:
    await _deploy(connected, fake, event_log)
    events = event_log.events
    _assert_ordered(events)
    _assert_no_repeats(events)
    assert events[0].kind is EventKind.PROC
    assert events[0].proc is not None
    assert events[0].proc.num_instances == 2
    for number in (1, 2):
        statuses = [e.instance.status for e in event_log.instances(JOB_ID, number) if e.instance]
        assert statuses[0] is InstanceStatus.PENDING
        assert statuses[-1] is RUNNING


async def test_scale_publishes_the_count_and_the_instances_that_come_and_go(
    connected: NomadScheduler, fake: FakeNomad, event_log: EventLog
) -> None:
    await _deploy(connected, fake, event_log)
    mark = event_log.last_cursor
    await connected.scale(JOB_ID, 3)
    fake.settle()
    proc = await event_log.wait_for(
        lambda e: e.kind is EventKind.PROC and e.proc is not None and e.proc.num_instances == 3,
        after=mark,
    )
    third = await event_log.wait_for(_running_and_healthy(3), after=mark)
    assert proc.cursor < third.cursor
    mark = event_log.last_cursor
    await connected.scale(JOB_ID, 1)
    fake.settle()
    for number in (2, 3):
        await event_log.wait_for(
            instance_is(JOB_ID, number, InstanceStatus.EXITED), after=mark, message=f"{number} gone"
        )
    _assert_ordered(event_log.events)
    _assert_no_repeats(event_log.events)


async def test_start_reconciles_what_already_runs(settings: NomadSettings, fake: FakeNomad) -> None:
    async with open_scheduler(settings) as first:
        await first.apply(make_job(num_instances=2))
    fake.settle()
    async with open_scheduler(settings) as second:
        log = EventLog(second)
        try:
            for number in (1, 2):
                await log.wait_for(_running_and_healthy(number))
            assert log.events[0].kind is EventKind.PROC
        finally:
            await log.close()


async def test_stop_is_a_proc_event_and_purge_removes_the_proc(
    connected: NomadScheduler, fake: FakeNomad, event_log: EventLog
) -> None:
    await _deploy(connected, fake, event_log)
    mark = event_log.last_cursor
    await connected.control(JOB_ID, InstanceAction.STOP)
    fake.settle()
    for number in (1, 2):
        await event_log.wait_for(instance_is(JOB_ID, number, InstanceStatus.EXITED), after=mark)
    mark = event_log.last_cursor
    await connected.remove(JOB_ID)
    removed = await event_log.wait_for(lambda e: e.kind is EventKind.PROC_REMOVED, after=mark)
    assert removed.job_id == JOB_ID
    assert all(e.kind is not EventKind.PROC_REMOVED for e in event_log.events if e.cursor < mark)


async def test_purge_of_a_running_job_removes_the_proc(
    connected: NomadScheduler, fake: FakeNomad, event_log: EventLog
) -> None:
    await _deploy(connected, fake, event_log)
    mark = event_log.last_cursor
    await connected.remove(JOB_ID)
    await event_log.wait_for(lambda e: e.kind is EventKind.PROC_REMOVED, after=mark)


async def test_stream_dropped_midway_resumes_after_the_last_index(
    connected: NomadScheduler,
    fake: FakeNomad,
    nomad_server: FakeNomadServer,
    event_log: EventLog,
) -> None:
    stream = connected.event_stream
    assert stream is not None
    nomad_server.faults.drop_stream_after(3)
    await _deploy(connected, fake, event_log)
    await wait_until(lambda: stream.connections >= 2, message="a reconnect")
    indexes = [
        int(seen.params["index"][0])
        for seen in nomad_server.seen
        if seen.path == "/v1/event/stream"
    ]
    assert indexes == sorted(indexes)
    assert indexes[-1] > indexes[0]
    assert "closed the event stream" in stream.last_failure
    _assert_ordered(event_log.events)
    _assert_no_repeats(event_log.events)


async def test_replayed_frames_after_a_reconnect_publish_nothing(
    connected: NomadScheduler,
    fake: FakeNomad,
    nomad_server: FakeNomadServer,
    event_log: EventLog,
) -> None:
    stream = connected.event_stream
    assert stream is not None
    await _deploy(connected, fake, event_log)
    await wait_until(lambda: stream.last_index == fake.index, message="the stream to catch up")
    mark = event_log.last_cursor
    # Asked for an index past its newest, Nomad sends its newest frame again.
    nomad_server.faults.refuse_connections()
    nomad_server.faults.accept_connections()
    await wait_until(lambda: stream.connections >= 2 and stream.connected, message="reconnect")
    assert event_log.last_cursor == mark, [e for e in event_log.events if e.cursor > mark]


async def test_silent_stream_times_out_reconnects_and_reconciles(
    connected: NomadScheduler,
    fake: FakeNomad,
    nomad_server: FakeNomadServer,
    event_log: EventLog,
) -> None:
    stream = connected.event_stream
    assert stream is not None
    nomad_server.faults.stream_silent = True  # no events, no heartbeats
    await connected.apply(make_job(num_instances=1))
    fake.settle()
    # Nothing arrives on the stream; the reconcile after the read timeout finds the job.
    await event_log.wait_for(_running_and_healthy(1), within=HEARTBEAT_TIMEOUT * 8)
    assert "no event or heartbeat" in stream.last_failure
    nomad_server.faults.stream_silent = False
    mark = event_log.last_cursor
    await connected.scale(JOB_ID, 2)
    fake.settle()
    await event_log.wait_for(_running_and_healthy(2), after=mark)
    _assert_ordered(event_log.events)
    _assert_no_repeats(event_log.events)


async def test_heartbeats_keep_an_idle_stream_open(
    connected: NomadScheduler, nomad_server: FakeNomadServer
) -> None:
    stream = connected.event_stream
    assert stream is not None
    # A time-based check by nature: nothing may happen for several read timeouts.
    await asyncio.sleep(HEARTBEAT_TIMEOUT * 2)
    assert stream.connections == 1
    assert stream.connected


async def test_refused_connections_then_back_reconciles_what_was_missed(
    settings: NomadSettings, nomad_server: FakeNomadServer
) -> None:
    # A tiny event buffer: what happens while we are away is gone from it.
    fake = nomad_server.reset(FakeNomad(event_buffer=2)).fake
    async with open_scheduler(settings) as scheduler:
        log = EventLog(scheduler)
        try:
            stream = scheduler.event_stream
            assert stream is not None
            await wait_until(lambda: stream.connected, message="the stream")
            await _deploy(scheduler, fake, log, count=1)
            nomad_server.faults.refuse_connections()
            await wait_until(lambda: not stream.connected, message="the stream to break")
            fake.scale("default", JOB_ID, {"Count": 2, "Target": {"Group": "web"}, "Message": "x"})
            fake.settle()
            nomad_server.faults.accept_connections()
            await log.wait_for(_running_and_healthy(2))
            await log.wait_for(
                lambda e: (
                    e.kind is EventKind.PROC and e.proc is not None and e.proc.num_instances == 2
                )
            )
            _assert_ordered(log.events)
            _assert_no_repeats(log.events)
        finally:
            await log.close()


async def test_stream_errors_back_off_and_recover(
    settings: NomadSettings, fake: FakeNomad, nomad_server: FakeNomadServer
) -> None:
    nomad_server.faults.http_500 = True
    async with open_scheduler(settings) as scheduler:
        stream = scheduler.event_stream
        assert stream is not None
        await wait_until(lambda: "answered 500" in stream.last_failure, message="a failure")
        assert not (await scheduler.health()).ok
        nomad_server.faults.http_500 = False
        await wait_until(lambda: stream.connected, message="recovery")
        health = await scheduler.health()
        assert health.ok
        assert "reconnecting" not in health.detail


async def test_events_after_a_cursor_replay_the_history(
    connected: NomadScheduler, fake: FakeNomad, event_log: EventLog
) -> None:
    await _deploy(connected, fake, event_log)
    cursor = event_log.events[2].cursor
    replayed: list[int] = []
    async for event in connected.events(after=cursor):
        replayed.append(event.cursor)
        if event.cursor == event_log.last_cursor:
            break
    assert replayed == [e.cursor for e in event_log.events if e.cursor > cursor]


async def test_a_stream_that_opens_and_drops_backs_off_to_the_cap(
    settings: NomadSettings, nomad_server: FakeNomadServer
) -> None:
    # Each connection opens (Nomad's first heartbeat arrives) and ends at once. Opening
    # alone proves nothing: without an event or a second heartbeat the backoff keeps
    # growing instead of starting over at every reconnect (and reconcile).
    nomad_server.faults.stream_flaps = True
    async with open_scheduler(settings, reconnect_backoff=(0.01, 0.08)) as scheduler:
        stream = scheduler.event_stream
        assert stream is not None
        await wait_until(lambda: stream.connections >= 5, message="five short connections")
        assert stream.backoff == 0.08
        # Once a connection stays up past a heartbeat, the backoff starts over.
        nomad_server.faults.stream_flaps = False
        await wait_until(
            lambda: stream.connected and stream.backoff == 0.01, message="a proven connection"
        )


async def test_a_check_failing_after_the_deployment_turns_the_instance_unhealthy(
    settings: NomadSettings, fake: FakeNomad
) -> None:
    # Nomad judges health once per deployment and then stops watching
    # (client/allocrunner/health_hook.go): only the live check results can tell.
    async with open_scheduler(settings, health_interval=0.05) as scheduler:
        log = EventLog(scheduler)
        try:
            await _deploy(scheduler, fake, log)
            [second] = [i for i in (await scheduler.state(JOB_ID)).instances if i.number == 2]
            cursor = log.last_cursor
            fake.faults.failing_checks.add(second.instance_id)

            unhealthy = await log.wait_for(
                lambda e: (
                    instance_is(JOB_ID, 2, RUNNING)(e)
                    and e.instance is not None
                    and e.instance.healthy is False
                ),
                after=cursor,
                message="instance 2 unhealthy",
            )
            assert unhealthy.instance is not None
            states = {i.number: i.healthy for i in (await scheduler.state(JOB_ID)).instances}
            assert states == {1: True, 2: False}
            # The allocation's deployment verdict never changed: the health is the check's.
            [alloc] = [a for a in fake.allocations_of(JOB_ID) if a["ID"] == second.instance_id]
            assert alloc["DeploymentStatus"]["Healthy"] is True

            fake.faults.failing_checks.clear()
            await log.wait_for(_running_and_healthy(2), after=unhealthy.cursor)
        finally:
            await log.close()


async def test_reads_answer_from_the_stream_once_it_is_past_our_own_writes(
    connected: NomadScheduler, fake: FakeNomad, nomad_server: FakeNomadServer
) -> None:
    # The stream delivers nothing for now, so it cannot have seen our write yet.
    nomad_server.faults.stream_silent = True
    await connected.apply(make_job(num_instances=2))
    # Our write is newer than anything the stream has shown: ask Nomad, and see it.
    state = await connected.state(JOB_ID)
    assert (state.exists, connected.reads_from_nomad) == (True, 1)
    nomad_server.faults.stream_silent = False
    fake.settle()
    await in_step(connected, fake)
    calls = len(nomad_server.seen)
    state = await connected.state(JOB_ID)
    assert [(i.number, i.status, i.healthy) for i in state.instances] == [
        (1, RUNNING, True),
        (2, RUNNING, True),
    ]
    assert len(nomad_server.seen) == calls  # not one call
    assert connected.reads_from_events == 1
    # The same answer Nomad gives when asked.
    async with reading_nomad(NomadSettings(address=nomad_server.url)) as direct:
        assert await direct.state(JOB_ID) == state
