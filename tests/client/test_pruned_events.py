"""`events APP` on a console that has pruned its oldest events: it shows what is held."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.conftest import TICKER, Cli, eventually, start_console
from tests.e2e.console import Console


@pytest.fixture
def short_memory(tmp_path: Path) -> Iterator[Console]:
    console = Console(tmp_path / "data")
    console.extra_env["LAIN_CONSOLE_EVENT_RETENTION_COUNT"] = "100"  # the least allowed
    try:
        start_console(console)
        yield console
    finally:
        console.close()


def test_events_starts_at_the_oldest_event_held(short_memory: Console, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    cli = Cli(short_memory, home)
    cli.publish(tmp_path, TICKER)
    cli.ok("deploy", "hello", "--wait")
    for count in (10, 1) * 4:  # each instance that starts or stops is a few events
        cli.ok("scale", "hello", "worker", str(count))
        eventually(lambda n=count: [i["status"] for i in cli.instances()] == ["RUNNING"] * n)
    # A console prunes at its first append after it starts (then once a minute).
    short_memory.stop()
    start_console(short_memory)
    cli.ok("scale", "hello", "worker", "2")

    def expired() -> bool:
        return cli.run("events", "hello", "--after", "0").returncode == 2

    eventually(expired)
    told = cli.run("events", "hello", "--after", "0")
    assert told.stderr.startswith("error: CURSOR_EXPIRED: after: cursor 0 has expired")

    held = [json.loads(line) for line in cli.ok("events", "hello", "--json").stdout.splitlines()]
    assert held
    assert int(held[0]["cursor"]) > 1
