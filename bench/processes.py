"""Child processes of a run: servers under test and helpers. Each is ended by its own pid
when its block ends (terminate, then kill after a grace period)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["Served", "cpu_seconds", "free_port", "python_module", "server"]

_ROOT = Path(__file__).resolve().parent.parent
_READY_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Served:
    url: str
    pid: int

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux /proc), all its threads."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environ(extra: Mapping[str, str] | None) -> dict[str, str]:
    environ = dict(os.environ)
    # The children import `bench` and the product from the checkout, wherever we run from.
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_ROOT), environ.get("PYTHONPATH")]))
    environ.update(extra or {})
    return environ


@contextlib.contextmanager
def python_module(
    module: str,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdin: int | None = None,
    stdout: int | None = None,
) -> Iterator[subprocess.Popen[str]]:
    """`python -m module args...` for the duration of the block."""
    child = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=_ROOT,
        env=_environ(env),
        stdin=stdin,
        stdout=stdout,
        text=True,
    )
    try:
        yield child
    finally:
        _stop(child)


def _stop(child: subprocess.Popen[str]) -> None:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=5)


@contextlib.contextmanager
def server(
    target: str,
    *,
    data_dir: Path,
    n: int = 0,
    control: bool = False,
    metrics: bool = True,
    read_cache: bool = False,
    env: Mapping[str, str] | None = None,
) -> Iterator[Served]:
    """A `bench.serve` process, once it answers HTTP."""
    port = free_port()
    args = [target, "--data-dir", str(data_dir), "--n", str(n), "--port", str(port)]
    if control:
        args.append("--control")
    if not metrics:
        args.append("--no-metrics")
    if read_cache:
        args.append("--read-cache")
    with python_module("bench.serve", args, env=env) as child:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, child)
        yield Served(url, child.pid)


def _wait_ready(url: str, child: subprocess.Popen[str]) -> None:
    # uvicorn listens only after the lifespan has started: any answer means ready.
    deadline = time.monotonic() + _READY_TIMEOUT
    while True:
        if child.poll() is not None:
            raise RuntimeError(f"the server at {url} exited with {child.returncode}")
        try:
            httpx.get(url + "/", timeout=1.0)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server at {url} did not start") from None
            time.sleep(0.05)
