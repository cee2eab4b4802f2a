"""The `lain-console` command as the README runs it: a real process on a real port."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory

from store.migrate import alembic_config
from tests.live import stop_process


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAIN_CONSOLE_")}
    env["LAIN_CONSOLE_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "server.cli", *args]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path / "fresh" / "data"  # does not exist yet: serve must create it
    port = _free_port()
    process = subprocess.Popen(
        _cli("serve", "--port", str(port)),
        env=_env(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}", data_dir
    finally:
        stop_process(process)


def _wait_for_health(base_url: str, deadline_s: float = 30.0) -> httpx.Response:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return httpx.get(f"{base_url}/healthz", timeout=2)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_serve_migrates_a_fresh_data_dir_and_answers_healthz(served: tuple[str, Path]) -> None:
    base_url, data_dir = served
    response = _wait_for_health(base_url)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "scheduler": "ok"}
    with sqlite3.connect(data_dir / "lain-console.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert {"apps", "releases", "procs", "alembic_version"} <= tables


def test_migrate_creates_the_schema(tmp_path: Path) -> None:
    result = subprocess.run(
        _cli("migrate"), env=_env(tmp_path / "d"), capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "d" / "lain-console.db") as db:
        (version,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
    assert version == ScriptDirectory.from_config(alembic_config("")).get_current_head()


def test_a_bad_setting_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    result = subprocess.run(
        _cli("serve"),
        env=_env(tmp_path, LAIN_CONSOLE_PORT="http"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "lain-console: LAIN_CONSOLE_PORT must be an integer, got 'http'"
    )
    assert "Traceback" not in result.stderr
