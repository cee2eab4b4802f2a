"""A console as `make serve` runs it: SQLite in its data dir, the local backend, auth on.

Used by the tests that attack the local backend with real processes. Every app process a
test starts carries the test's marker in its environment and is killed at the end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx

from resolvers import users
from resolvers.core.context import SYSTEM, OpContext, Services
from resolvers.core.events import EventBus
from server.app import create_app
from server.settings import Settings, load_settings
from store.engine import make_sessionmaker, open_engine
from store.migrate import upgrade
from tests.app_python import APP_PYTHON
from tests.fakes.scheduler import FakeScheduler
from tests.live import serve
from tests.releases import meta_version

MARKER_KEY = "LAIN_SECURITY_TEST_MARKER"
VERSION = meta_version(1_700_000_001)


@dataclass
class LocalConsole:
    settings: Settings
    client: httpx.AsyncClient
    tokens: dict[str, str]
    marker: str

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    def worker_yaml(self, app: str, code: str, env: dict[str, str] | None = None) -> str:
        """A lain.yaml whose one worker runs `code`, carrying the test's marker."""
        indented = "\n".join("      " + line for line in code.splitlines())
        variables = {MARKER_KEY: self.marker, **(env or {})}
        env_lines = "\n".join(f"    - {key}={value}" for key, value in variables.items())
        return (
            f"appname: {app}\nworker.main:\n  cmd:\n    - {APP_PYTHON}\n    - -c\n    - |\n"
            f"{indented}\n  memory: 256m\n  env:\n{env_lines}\n"
        )

    async def rest(self, user: str, method: str, path: str, body: Any = None) -> httpx.Response:
        headers = {"access-token": self.tokens[user]}
        return await self.client.request(method, path, json=body, headers=headers)

    async def deploy_worker(
        self, user: str, app: str, code: str, env: dict[str, str] | None = None
    ) -> None:
        """Register, publish and deploy over REST, as the user would."""
        steps = [
            ("/api/v1/repos/", {"appname": app}, 201),
            (
                f"/api/v1/repos/{app}/versions/",
                {"meta_version": VERSION, "lain_yaml": self.worker_yaml(app, code, env)},
                201,
            ),
            ("/api/v1/apps/", {"appname": app}, 202),
        ]
        for path, body, status in steps:
            response = await self.rest(user, "POST", path, body)
            assert response.status_code == status, response.text

    def app_pids(self, app: str) -> list[int]:
        """Live processes of `app` started by this test."""
        wanted = {f"{MARKER_KEY}={self.marker}".encode(), f"LAIN_APPNAME={app}".encode()}
        return [pid for pid, environ in _environs() if wanted <= environ]


def _environs() -> list[tuple[int, set[bytes]]]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                found.append((int(entry.name), set((entry / "environ").read_bytes().split(b"\0"))))
    return found


def status_field(pid: int, name: str) -> str:
    """A field of /proc/<pid>/status, as text ("Uid" has real, effective, saved, fs)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return value.strip()
    raise AssertionError(f"no {name} in the status of {pid}")


def uid_of(pid: int) -> int:
    """The effective uid of a process."""
    return int(status_field(pid, "Uid").split()[1])


async def _add_users(database_url: str, names: tuple[str, ...]) -> dict[str, str]:
    async with open_engine(database_url) as engine:
        services = Services(
            sessions=make_sessionmaker(engine),
            scheduler=FakeScheduler(),
            bus=EventBus(),
            auth_enabled=True,
        )
        system = OpContext(services=services, principal=SYSTEM)
        tokens = {}
        for name in names:
            await users.add_user(system, name=name, is_admin=name == "root")
            _, tokens[name] = await users.create_token(system, user=name)
        return tokens


@contextlib.asynccontextmanager
async def local_console(
    tmp_path: Path, *, names: tuple[str, ...] = ("alice", "bob", "root"), **changes: Any
) -> AsyncIterator[LocalConsole]:
    """A served console on a fresh data dir, with a token for each user of `names`."""
    data_dir = tmp_path / "data"
    settings = replace(
        load_settings({"LAIN_CONSOLE_DATA_DIR": str(data_dir), "LAIN_CONSOLE_AUTH": "true"}),
        reconcile_interval=0,
        local_stop_on_exit=True,
        **changes,
    )
    data_dir.mkdir(mode=0o700)
    await anyio.to_thread.run_sync(upgrade, settings.database_url)
    tokens = await _add_users(settings.database_url, names)
    marker = uuid.uuid4().hex
    try:
        async with (
            serve(create_app(settings)) as base_url,
            httpx.AsyncClient(base_url=base_url, timeout=30) as client,
        ):
            yield LocalConsole(settings, client, tokens, marker)
    finally:
        for pid, environ in _environs():
            if f"{MARKER_KEY}={marker}".encode() in environ:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
