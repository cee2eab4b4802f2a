"""A real `lain-console serve` on the local backend, and the real `lain-console` client
command run against it as a user runs it (its own HOME, so its config file is the test's)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.app_python import APP_PYTHON
from tests.e2e.console import _COMMAND, Console
from tests.releases import V1, V2

__all__ = ["DEADLINE", "Cli", "eventually", "lain_yaml"]

DEADLINE = 60.0


def lain_yaml(cmd: str, *, memory: str = "64m") -> str:
    """hello's lain.yaml with one worker running `cmd` (Python source) under APP_PYTHON."""
    return f"appname: hello\nworker:\n  cmd: [{APP_PYTHON}, -u, -c, {cmd!r}]\n  memory: {memory}\n"


TICKER = lain_yaml(
    "import sys, time\nprint('hello from', sys.argv[0], flush=True)\n"
    "while True:\n  print('tick', flush=True)\n  time.sleep(0.5)"
)


def eventually(check: Callable[[], Any], deadline: float = DEADLINE) -> Any:
    """Poll `check` until it returns something true; fails the test after `deadline`."""
    end = time.monotonic() + deadline
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < end, f"not true within {deadline}s: {check}"
        time.sleep(0.1)


@dataclass
class Cli:
    """`lain-console` as a client of `console`, with HOME and XDG in `home`."""

    console: Console
    home: Path
    env: dict[str, str] = field(default_factory=dict)

    def environ(self, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("LAIN_CONSOLE_", "XDG_"))}
        return (
            base | {"HOME": str(self.home), "LAIN_CONSOLE_URL": self.console.url} | self.env | extra
        )

    def run(
        self, *args: str, timeout: float = 120, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(_COMMAND), *args],
            env=self.environ(**extra),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = self.run(*args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").stdout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(_COMMAND), *args],
            env=self.environ(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def publish(self, tmp: Path, yaml: str, version: str = V1) -> None:
        path = tmp / f"lain-{version}.yaml"
        path.write_text(yaml)
        self.ok("publish", "hello", "--meta-version", version, "--lain-yaml", str(path))

    def instances(self, proc: str = "worker") -> list[dict[str, Any]]:
        app = self.json("app", "hello")
        return next(p for p in app["procs"] if p["name"] == proc)["instances"]


def start_console(console: Console) -> None:
    console.start()

    def healthy() -> bool:
        try:
            return httpx.get(f"{console.url}/healthz", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    eventually(healthy)


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    console = Console(tmp_path / "data")
    try:
        start_console(console)
        yield console
    finally:
        console.close()


@pytest.fixture
def cli(console: Console, tmp_path: Path) -> Cli:
    home = tmp_path / "home"
    home.mkdir()
    return Cli(console, home)


__all__ += ["TICKER", "V1", "V2", "start_console"]
