"""scale, resize, restart, stop, start, logs and events against real processes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.client.conftest import TICKER, Cli, eventually
from tests.e2e.console import _COMMAND
from tests.live import stop_process
from tests.processes import processes_in


@pytest.fixture
def deployed(cli: Cli, tmp_path: Path) -> Cli:
    cli.publish(tmp_path, TICKER)
    cli.ok("deploy", "hello", "--wait")
    return cli


def _statuses(cli: Cli) -> dict[int, str]:
    return {i["number"]: i["status"] for i in cli.instances()}


def test_scale_and_resize(deployed: Cli) -> None:
    cli = deployed
    scaled = cli.json("scale", "hello", "worker", "2")
    assert scaled["numInstances"] == 2
    eventually(lambda: _statuses(cli) == {1: "RUNNING", 2: "RUNNING"})
    assert len(processes_in(cli.console.data_dir)) == 2

    resized = cli.json("resize", "hello", "worker", "--memory", "128m")
    assert resized["memory"] == "128m"
    assert cli.json("app", "hello")["procs"][0]["memory"] == "128m"

    neither = cli.run("resize", "hello", "worker")
    assert (neither.returncode, neither.stderr) == (
        2,
        "error: INVALID: resize: give --cpu, --memory or both\n",
    )
    negative = cli.run("scale", "hello", "worker", "-1")
    assert negative.returncode == 2


def test_stop_start_and_restart_one_instance_or_all(deployed: Cli) -> None:
    cli = deployed
    cli.ok("scale", "hello", "worker", "2")
    eventually(lambda: _statuses(cli) == {1: "RUNNING", 2: "RUNNING"})

    stopped = cli.ok("stop", "hello", "worker", "--instance", "2")
    assert "stopping hello.worker instance 2" in stopped.stderr
    eventually(lambda: _statuses(cli).get(2) != "RUNNING" and _statuses(cli)[1] == "RUNNING")
    cli.ok("start", "hello", "worker", "--instance", "2")
    eventually(lambda: _statuses(cli) == {1: "RUNNING", 2: "RUNNING"})

    before = {i["number"]: i["restarts"] for i in cli.instances()}
    cli.ok("restart", "hello", "worker")
    eventually(
        lambda: all(
            i["status"] == "RUNNING" and i["restarts"] > before[i["number"]]
            for i in cli.instances()
        )
    )
    missing = cli.run("restart", "hello", "nope")
    assert missing.returncode == 3
    assert missing.stderr.startswith("error: NOT_FOUND: ")


def test_logs_tail_and_follow(deployed: Cli) -> None:
    cli = deployed
    eventually(lambda: len(cli.run("logs", "hello", "--tail", "3").stdout.splitlines()) == 3)
    lines = [
        json.loads(x) for x in cli.ok("logs", "hello", "worker", "--json").stdout.split("\n") if x
    ]
    assert lines[0]["text"].startswith("hello from")
    assert {(x["proc"], x["instance"], x["stream"]) for x in lines} == {("worker", 1, "STDOUT")}

    follower = cli.popen("logs", "hello", "-f", "--tail", "0")
    try:
        assert follower.stdout is not None
        first = follower.stdout.readline()  # a new line: the app prints every half second
        assert first.rstrip().endswith("worker.1: tick"), first
    finally:
        stop_process(follower)
    bad = cli.run("logs", "hello", "nope")
    assert (bad.returncode, bad.stderr) == (3, "error: NOT_FOUND: hello has no proc 'nope'\n")


def test_events_history_and_follow_after_a_cursor(deployed: Cli) -> None:
    cli = deployed
    held = [json.loads(x) for x in cli.ok("events", "hello", "--json").stdout.splitlines()]
    assert held, "deploying left events"
    assert {e["kind"] for e in held} >= {"APP", "INSTANCE"}
    assert [int(e["cursor"]) for e in held] == sorted(int(e["cursor"]) for e in held)

    follower = cli.popen("events", "hello", "-f", "--after", held[-1]["cursor"], "--json")
    try:
        cli.ok("scale", "hello", "worker", "2")
        assert follower.stdout is not None
        seen: list[dict[str, object]] = []
        while not any(
            e["instance"] and e["instance"]["number"] == 2  # type: ignore[index]
            for e in seen
        ):
            seen.append(json.loads(follower.stdout.readline()))
        assert int(str(seen[0]["cursor"])) == int(held[-1]["cursor"]) + 1  # resumed right after
    finally:
        stop_process(follower)

    human = cli.ok("events", "hello", "--after", held[-1]["cursor"]).stdout
    assert "hello.worker.2" in human
    ahead = cli.run("events", "hello", "--after", "999999999")
    assert ahead.returncode == 2
    assert ahead.stderr.startswith("error: INVALID: after: cursor 999999999 is newer than")
    garbage = cli.run("events", "hello", "--after", "yesterday")
    assert garbage.returncode == 2
    assert garbage.stderr.startswith("error: INVALID: ")


def test_follow_ends_cleanly_on_a_pipe_reader_leaving(deployed: Cli) -> None:
    shell = f"'{_COMMAND}' logs hello -f | head -1"
    done = subprocess.run(
        ["sh", "-c", shell], env=deployed.environ(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert "Traceback" not in done.stderr, done.stderr


def test_watch_json_prints_each_new_state(deployed: Cli) -> None:
    watcher = deployed.popen("watch", "hello", "--json")
    try:
        assert watcher.stdout is not None
        first = json.loads(watcher.stdout.readline())
        assert [i["number"] for i in first["procs"][0]["instances"]] == [1]
        deployed.ok("scale", "hello", "worker", "2")
        while True:  # ends by the test's timeout if the new instance never shows
            state = json.loads(watcher.stdout.readline())
            if [i["status"] for i in state["procs"][0]["instances"]] == ["RUNNING"] * 2:
                break
    finally:
        stop_process(watcher)
