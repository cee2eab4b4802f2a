"""One console per data dir, and none that cannot serve: real `lain-console serve` processes
on one data dir, with a real app process between them."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import httpx
import pytest

from tests.e2e.console import Console, alive, deploy_sleeper, graphql, healthy, until
from tests.live import free_port
from tests.processes import kill_processes_in, processes_in

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("LAIN_CONSOLE_TEST_DATABASE_URL")),
    reason="the data dir lock guards the README's server on its default SQLite database",
)

INSTANCES = '{ app(name: "hello") { procs { instances { status restarts } } } }'


async def test_a_second_console_on_the_data_dir_refuses_naming_it_and_the_first(
    console: Console,
) -> None:
    console.start()
    pid = await deploy_sleeper(console)
    assert console.process is not None

    second = await asyncio.to_thread(console.run_expecting_exit, port=free_port())

    assert second.returncode == 1, second.stderr
    assert (
        f"lain-console: data dir {console.data_dir} is in use by another lain-console "
        f"(pid {console.process.pid})" in second.stderr
    )
    assert "lain-console ready" not in second.stderr  # it never adopted or reconciled
    assert processes_in(console.data_dir) == [pid]
    async with httpx.AsyncClient(base_url=console.url, timeout=30) as client:
        app = (await graphql(client, INSTANCES))["app"]
    assert app["procs"][0]["instances"] == [{"status": "RUNNING", "restarts": 0}]


async def test_a_killed_or_stopped_console_leaves_the_data_dir_to_the_next(
    console: Console,
) -> None:
    console.start()
    pid = await deploy_sleeper(console)
    console.kill()  # SIGKILL: no cleanup of its own; the kernel drops the lock
    assert alive(pid)  # the app outlives the console, and does not hold its lock

    for _ in ("after the kill", "after a clean stop"):
        console.start()
        async with httpx.AsyncClient(base_url=console.url, timeout=30) as client:
            await until(lambda: healthy(client))
            app = (await graphql(client, INSTANCES))["app"]
        assert app["procs"][0]["instances"] == [{"status": "RUNNING", "restarts": 0}]
        assert processes_in(console.data_dir) == [pid]  # adopted, not started again
        console.stop()


async def test_serve_on_a_busy_port_fails_before_adopting_or_reconciling(
    console: Console,
) -> None:
    console.start()
    await deploy_sleeper(console)
    console.kill()
    kill_processes_in(console.data_dir)  # a console that started would start it again
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        refused = await asyncio.to_thread(console.run_expecting_exit, port=port)

    assert refused.returncode == 1, refused.stderr
    assert (
        f"lain-console: cannot listen on 127.0.0.1:{port}: Address already in use" in refused.stderr
    )
    assert "lain-console ready" not in refused.stderr
    assert processes_in(console.data_dir) == []


async def test_a_second_console_on_a_sqlite_file_outside_both_data_dirs_refuses(
    tmp_path: Path,
) -> None:
    database = tmp_path / "shared" / "console.db"
    database.parent.mkdir()
    first, second = Console(tmp_path / "first"), Console(tmp_path / "second")
    for console in (first, second):
        console.extra_env["LAIN_CONSOLE_DATABASE_URL"] = f"sqlite+aiosqlite:///{database}"
    try:
        first.start()
        async with httpx.AsyncClient(base_url=first.url, timeout=30) as client:
            await until(lambda: healthy(client))
        assert first.process is not None

        refused = await asyncio.to_thread(second.run_expecting_exit)

        assert refused.returncode == 1, refused.stderr
        assert (
            f"lain-console: SQLite database {database} is in use by another lain-console "
            f"(pid {first.process.pid}); stop that one first, or set LAIN_CONSOLE_DATABASE_URL "
            "to another database (SQLite serves one console)" in refused.stderr
        )
        assert "lain-console ready" not in refused.stderr
    finally:
        first.close()
        second.close()
