"""Apps of the local backend cannot reach the console or each other (issue 12, critical).

The attack: a signed-in user deploys an app whose process opens the console's database
(tokens, every app's env) and looks into another app's directory and environment.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest

from server.scheduler import check_isolation
from server.settings import SettingsError, load_settings
from tests.app_python import APP_PYTHON
from tests.backends.local.helpers import (
    all_up,
    kill_and_reap,
    make_job,
    marked_pids,
    pid_of,
    scheduler,
    wait_for_instances,
    wait_until,
)
from tests.rest_compat.helpers import until
from tests.security.local_console import LocalConsole, local_console, status_field, uid_of

# CI runs as root, where these run; elsewhere apps cannot get users of their own.
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="apps get their own uids only as root")

VICTIM = """\
import time
with open("secret.txt", "w") as file:
    file.write("the victim's secret")
time.sleep(3600)
"""

# Everything it reaches is printed as one JSON line; then it stays, to be looked at.
SPY = """\
import json, os, time
report = {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups()}
def attempt(name, action):
    try:
        report[name] = repr(action())[:200]
    except OSError as exc:
        report[name] = "refused: " + exc.strerror
attempt("database", lambda: open("../../lain-console.db", "rb").read(16))
attempt("data_dir", lambda: os.listdir("../.."))
attempt("local_state", lambda: os.listdir("../../local"))
attempt("victim_dir", lambda: os.listdir("../victim"))
attempt("victim_secret", lambda: open("../victim/secret.txt").read())
def environs():
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                environ = open(f"/proc/{pid}/environ", "rb").read()
            except OSError:
                continue
            if b"VICTIM_PASSWORD" in environ:
                found.append(pid)
    return found
attempt("victim_environ", environs)
def signal_victim():
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
            except OSError:
                continue
            if b"the victim's secret" in cmdline:
                os.kill(int(pid), 0)  # signal 0: only the permission check
                return pid
attempt("signal_victim", signal_victim)
print(json.dumps(report), flush=True)
time.sleep(3600)
"""


async def _report(console: LocalConsole, app: str) -> dict[str, Any]:
    log = console.data_dir / "local" / "logs" / f"{app}.worker.main" / "1.stdout.log"

    async def read() -> dict[str, Any] | None:
        lines = log.read_text().splitlines() if log.exists() else []
        return json.loads(lines[0]) if lines else None

    report: dict[str, Any] = await until(read)
    return report


@as_root
async def test_an_app_reaches_neither_the_console_nor_another_app(tmp_path: Path) -> None:
    async with local_console(tmp_path) as console:
        await console.deploy_worker("bob", "victim", VICTIM, {"VICTIM_PASSWORD": "hunter2"})
        victim_dir = console.data_dir / "apps" / "victim"
        await until(lambda: _exists(victim_dir / "secret.txt"))
        await console.deploy_worker("alice", "spy", SPY)

        report = await _report(console, "spy")

        assert report["database"] == "refused: Permission denied"
        assert report["data_dir"] == "refused: Permission denied"
        assert report["local_state"] == "refused: Permission denied"
        assert report["victim_dir"] == "refused: Permission denied"
        assert report["victim_secret"] == "refused: Permission denied"
        assert report["victim_environ"] == "[]"
        assert report["signal_victim"] == "refused: Operation not permitted"
        (victim_pid,) = console.app_pids("victim")
        (spy_pid,) = console.app_pids("spy")
        assert report["uid"] == uid_of(spy_pid)
        assert len({os.geteuid(), uid_of(victim_pid), report["uid"]}) == 3
        assert report["uid"] != 0
        assert report["gid"] != 0
        assert report["groups"] == []
        assert status_field(spy_pid, "NoNewPrivs") == "1"


async def _exists(path: Path) -> bool:
    return await anyio.Path(path).exists()


@as_root
async def test_the_console_files_are_private(tmp_path: Path) -> None:
    async with local_console(tmp_path) as console:
        await console.deploy_worker("bob", "victim", VICTIM)
        victim_dir = console.data_dir / "apps" / "victim"
        await until(lambda: _exists(victim_dir / "secret.txt"))

        database = console.data_dir / "lain-console.db"
        assert _mode(database) == 0o600
        for sidecar in (Path(f"{database}-wal"), Path(f"{database}-shm")):
            if sidecar.exists():
                assert _mode(sidecar) == 0o600
        assert _mode(console.data_dir) == 0o711  # passable to reach apps/<app>, not listable
        assert _mode(console.data_dir / "local") == 0o700
        assert _mode(victim_dir) == 0o700
        (victim_pid,) = console.app_pids("victim")
        assert victim_dir.stat().st_uid == uid_of(victim_pid)


@as_root
async def test_an_app_keeps_its_uid_across_a_console_restart(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    uids = []
    try:
        for _ in range(2):
            async with scheduler(tmp_path / "data", stop_on_exit=True) as sched:
                for app in ("first", "second"):
                    await sched.apply(make_job(marker, app=app))
                instances = [
                    await wait_for_instances(sched, f"{app}.worker.worker", all_up)
                    for app in ("first", "second")
                ]
                uids.append([uid_of(pid_of(found)) for (found,) in instances])
    finally:
        for pid in marked_pids(marker):
            kill_and_reap(pid)
    assert uids[0] == uids[1]
    assert len(set(uids[0])) == 2


@as_root
async def test_a_bare_command_is_looked_up_as_the_app(tmp_path: Path) -> None:
    """A PATH entry only the console can enter must not shadow one the app can use."""
    private_bin = tmp_path / "console-bin"
    private_bin.mkdir(mode=0o700)
    python = Path(APP_PYTHON)
    (private_bin / python.name).symlink_to(python)
    marker = uuid.uuid4().hex
    path = os.pathsep.join((str(private_bin), str(python.parent), "/usr/bin", "/bin"))
    code = "import os, time; print('running as', os.getuid(), flush=True); time.sleep(60)"
    job = make_job(marker, cmd=(python.name, "-c", code), env=(("PATH", path),))
    try:
        async with scheduler(tmp_path / "data", stop_on_exit=True) as sched:
            await sched.apply(job)

            def started() -> bool:
                return any(line.text.startswith("running as") for line in sched.logs(job.job_id, 1))

            await wait_until(started, what="the app's first line")
            (line,) = [line.text for line in sched.logs(job.job_id, 1)]
            assert line != "running as 0"
    finally:
        for pid in marked_pids(marker):
            kill_and_reap(pid)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_without_root_and_with_auth_the_local_backend_refuses_to_start() -> None:
    settings = load_settings({"LAIN_CONSOLE_AUTH": "true"})
    with pytest.raises(SettingsError, match="LAIN_CONSOLE_LOCAL_ALLOW_UNISOLATED=true"):
        check_isolation(settings, euid=1000)
    accepted = load_settings(
        {"LAIN_CONSOLE_AUTH": "true", "LAIN_CONSOLE_LOCAL_ALLOW_UNISOLATED": "1"}
    )
    check_isolation(accepted, euid=1000)
    check_isolation(load_settings({}), euid=1000)  # auth off: LAIN's open console
    check_isolation(settings, euid=0)


@as_root
async def test_a_data_dir_apps_cannot_reach_by_path_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "private"
    blocked.mkdir(mode=0o700)
    async with scheduler(blocked / "data"):
        pass
    warned = [r.getMessage() for r in caplog.records if "cannot pass" in r.getMessage()]
    (message,) = warned
    # The first directory on the way down that others cannot pass.
    first = next(p for p in reversed((blocked / "data").parents) if not p.stat().st_mode & 0o001)
    assert f"cannot pass {first} (mode 700)" in message
    caplog.clear()
    passable = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        os.chmod(passable, 0o711)
        async with scheduler(passable / "data"):
            pass
        assert not [r for r in caplog.records if "cannot pass" in r.getMessage()]
    finally:
        shutil.rmtree(passable)


def test_a_fresh_data_dir_and_database_are_the_consoles_alone(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAIN_CONSOLE_")}
    env["LAIN_CONSOLE_DATA_DIR"] = str(data_dir)
    subprocess.run(
        [sys.executable, "-m", "server.cli", "migrate"], env=env, check=True, timeout=120
    )
    assert _mode(data_dir) == 0o700
    assert _mode(data_dir / "lain-console.db") == 0o600
