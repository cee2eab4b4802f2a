"""Starting processes: a start that fails says which step failed, not only the command."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from backends.local.process import SpawnError, SpawnSpec, spawn


def _spec(tmp_path: Path, argv: tuple[str, ...], **changes: object) -> SpawnSpec:
    fields: dict[str, object] = {
        "argv": argv,
        "env": (("PATH", os.defpath),),
        "cwd": tmp_path / "app",
        "stdout": tmp_path / "out.log",
        "stderr": tmp_path / "err.log",
    }
    fields.update(changes)
    return SpawnSpec(**fields)  # type: ignore[arg-type]


def test_spawn_names_an_unwritable_pid_file_not_the_command(tmp_path: Path) -> None:
    # What a relative data dir did: the pid file's path no longer led anywhere after the chdir.
    pid_file = tmp_path / "no-such-dir" / "1.abc.pid"
    spec = _spec(tmp_path, (sys.executable, "-c", "pass"), pid_file=pid_file)
    with pytest.raises(SpawnError) as failed:
        spawn(spec)
    assert str(failed.value) == f"cannot write the pid file {pid_file}: No such file or directory"


def test_spawn_names_the_command_when_the_exec_itself_fails(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "not-a-program").write_bytes(b"\x00\x01\x02 garbage")
    (app / "not-a-program").chmod(0o755)
    with pytest.raises(SpawnError) as failed:
        spawn(_spec(tmp_path, ("./not-a-program",)))
    assert str(failed.value) == (
        f"cannot run './not-a-program' ({app / 'not-a-program'}) in {app}: Exec format error"
    )
