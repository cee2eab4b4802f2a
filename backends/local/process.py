"""Spawning, watching, signalling and re-finding the OS processes behind instances.

A process is started through a tiny Python shim (`_EXEC_SHIM`) with `os.posix_spawn`: the
shim changes into the working directory, applies the memory rlimit, writes its pid file and
execs the proc's argv, so the pid we record is the app's own. `spawn` returns only after
that exec (the shim reports failures through a pipe that the exec closes). Each process
leads its own session, so signals reach its whole process group and it survives the
console; it reads /dev/null and appends stdout and stderr straight to files, which keeps
working while no console is attached.

Given an identity (see `isolation`), the shim drops to that uid and gid last, after
everything that needs the console's rights (the pid file in the console's private run dir),
with no supplementary groups and PR_SET_NO_NEW_PRIVS. Output files are opened by the console
and inherited, so the app writes its logs without being able to reach them by path.

The memory limit is RLIMIT_AS, the size of the address space. It bounds virtual memory,
not resident memory: runtimes that reserve large ranges up front (the JVM, Go, allocators
with per-thread arenas) can fail to start under a limit far above what they use, and a
CPython interpreter needs a few tens of MiB only to start. A memory_bytes of 0 means no
limit. (cgroups would bound resident memory, but need privileges this backend does not
assume.) CPU shares are not enforced at all.

A process is identified by its pid plus its start time (field 22 of /proc/<pid>/stat) so a
reused pid is never mistaken for ours. Exits are noticed through a pidfd where the kernel
has them, by polling otherwise. Everything here is Linux-specific, like /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import select
import shutil
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "AppIdentity",
    "ExitInfo",
    "PortAllocator",
    "ProcessHandle",
    "SpawnError",
    "SpawnSpec",
    "adopt",
    "kill_leftovers",
    "read_start_time",
    "resolve_executable",
    "spawn",
    "terminate",
]

_log = logging.getLogger(__name__)

# Without a pidfd an exit is found by polling this often.
_POLL_INTERVAL = 0.2

# The shim reports to the console through fd 3, which closes on a successful exec.
_REPORT_FD = 3
_EXEC_SHIM = """\
import os, resource, signal, sys
cwd, limit, pid_file, ids, lc_ctype, path, *argv = sys.argv[1:]
# Python coerces a C locale by exporting LC_CTYPE; undo that so the app gets exactly its env.
if lc_ctype == "-":
    os.environ.pop("LC_CTYPE", None)
else:
    os.environ["LC_CTYPE"] = lc_ctype[1:]
# Python ignores these at startup, and an ignored signal would survive the exec.
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
signal.pthread_sigmask(signal.SIG_SETMASK, ())
# Each step names itself, so that a failure reports its real cause, not the command.
step = f"cannot change into {cwd}"
try:
    os.chdir(cwd)
    step = f"cannot set the memory limit of {limit} bytes"
    limit = int(limit)
    if limit > 0:
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if pid_file:
        # Written here, not by the console: it exists even if the console dies right now.
        step = f"cannot write the pid file {pid_file}"
        stat = open("/proc/self/stat").read()
        start_time = stat[stat.rindex(")") + 2 :].split()[19]
        with open(pid_file + ".tmp", "w") as file:
            file.write(f"{os.getpid()} {start_time}\\n")
        os.replace(pid_file + ".tmp", pid_file)
    if ids:
        # Last, once nothing left needs root: the app's own uid and gid, no other groups,
        # and no way back up through set-uid programs.
        step = f"cannot switch to uid:gid {ids}"
        import ctypes, shutil  # now: the interpreter's own files may be out of the app's reach
        uid, gid = (int(n) for n in ids.split(":"))
        if ctypes.CDLL(None, use_errno=True).prctl(38, 1, 0, 0, 0) != 0:  # NO_NEW_PRIVS
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        if "/" not in argv[0]:
            # Looked up again as the app: the console may reach PATH entries it cannot.
            path = shutil.which(argv[0], path=os.environ.get("PATH", os.defpath)) or path
    os.set_inheritable(3, False)
    step = f"cannot run {argv[0]!r} ({path}) in {cwd}"
    os.execv(path, argv)
except Exception as exc:  # reported, whatever it is, so that the start counts as failed
    message = f"{step}: {getattr(exc, 'strerror', None) or exc}"
    os.write(3, message.encode())
    sys.stderr.write(f"lain-console: {message}\\n")
    sys.exit(127)
"""
# A shim that has not exec'd by then is hung; it is killed and the start counts as failed.
_EXEC_DEADLINE = 30.0


class SpawnError(Exception):
    """The process could not be started; the message says why, for `last_error`."""


@dataclass(frozen=True, slots=True)
class AppIdentity:
    """The uid and gid an app's processes run as (see `isolation`)."""

    uid: int
    gid: int


@dataclass(frozen=True, slots=True)
class SpawnSpec:
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]  # in the order the instance gets them
    cwd: Path
    stdout: Path
    stderr: Path
    memory_bytes: int = 0  # RLIMIT_AS; 0 means no limit
    pid_file: Path | None = None  # the process writes "<pid> <start time>" here before exec
    identity: AppIdentity | None = None  # switched to before exec; None: run as the console


@dataclass(frozen=True, slots=True)
class ExitInfo:
    """How a process ended; both None when it was not our child and the status is lost."""

    code: int | None = None
    signal: int | None = None

    @classmethod
    def from_wait_status(cls, status: int) -> ExitInfo:
        if os.WIFSIGNALED(status):
            return cls(signal=os.WTERMSIG(status))
        return cls(code=os.WEXITSTATUS(status))

    @property
    def exit_code(self) -> int | None:
        """The shell's convention: 128 + signal for a process killed by a signal."""
        if self.signal is not None:
            return 128 + self.signal
        return self.code

    def describe(self) -> str:
        if self.signal is not None:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = "unknown"
            return f"killed by signal {self.signal} ({name})"
        if self.code is not None:
            return f"exited with code {self.code}"
        return "exited (exit code unknown: the process was adopted, not started, here)"


def read_start_time(pid: int) -> tuple[int, str] | None:
    """The process's start time in clock ticks since boot and its state letter, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses; it ends at the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19]), fields[0]


def resolve_executable(name: str, *, path: str, cwd: Path) -> str | None:
    """The file `name` would exec: looked up in `path` unless it holds a slash."""
    if "/" in name:
        candidate = cwd / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
        return None
    return shutil.which(name, path=path)


class ProcessHandle:
    """One running process of ours, started here or adopted after a console restart."""

    def __init__(self, pid: int, start_time: int, pidfd: int | None) -> None:
        self.pid = pid
        self.start_time = start_time
        self._pidfd = pidfd
        self._exit: ExitInfo | None = None
        self._waiter: asyncio.Future[ExitInfo] | None = None

    def __repr__(self) -> str:
        return f"ProcessHandle(pid={self.pid}, start_time={self.start_time})"

    async def wait(self) -> ExitInfo:
        """Wait for the process to end; any number of callers may wait at once."""
        if self._exit is not None:
            return self._exit
        if self._pidfd is None:
            return await self._poll_until_exit()
        if self._waiter is None:
            loop = asyncio.get_running_loop()
            self._waiter = loop.create_future()
            loop.add_reader(self._pidfd, self._on_pidfd_readable)
        # Shielded: one caller giving up must not cancel the exit for the others.
        return await asyncio.shield(self._waiter)

    def _on_pidfd_readable(self) -> None:
        assert self._pidfd is not None
        assert self._waiter is not None
        asyncio.get_running_loop().remove_reader(self._pidfd)
        info = self._reap()
        if info is None:  # a pidfd is readable only once the process has exited
            info = ExitInfo()
        self._exit = info
        if not self._waiter.done():
            self._waiter.set_result(info)

    async def _poll_until_exit(self) -> ExitInfo:
        while self._exit is None:
            info = self._reap()
            if info is not None:
                self._exit = info
                break
            await asyncio.sleep(_POLL_INTERVAL)
        return self._exit

    def _reap(self) -> ExitInfo | None:
        """Collect the exit status if the process has ended; None while it runs."""
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            # Not our child (adopted after a restart): init reaps it and keeps the status.
            if self._is_running():
                return None
            return ExitInfo()
        if pid == 0:
            return None
        return ExitInfo.from_wait_status(status)

    def _is_running(self) -> bool:
        found = read_start_time(self.pid)
        return found is not None and found[0] == self.start_time and found[1] != "Z"

    def signal_group(self, sig: int) -> None:
        """Send `sig` to the process group, unless the pid no longer belongs to our process."""
        if self._exit is None:
            found = read_start_time(self.pid)
            if found is None or found[0] != self.start_time:
                return
        _signal_group(self.pid, sig)

    def close(self) -> None:
        """Stop watching (the process is left alone) and release the pidfd."""
        if self._pidfd is None:
            return
        if self._waiter is not None and not self._waiter.done():
            with contextlib.suppress(RuntimeError):  # the loop may be gone already
                asyncio.get_running_loop().remove_reader(self._pidfd)
            self._waiter.cancel()
        os.close(self._pidfd)
        self._pidfd = None


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        # The process left its group (setpgid); the leader alone is still ours.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    except PermissionError:
        _log.warning("not allowed to signal process group %d", pid)


def _open_pidfd(pid: int) -> int | None:
    if not hasattr(os, "pidfd_open"):
        return None
    try:
        return os.pidfd_open(pid)
    except OSError as exc:
        if exc.errno in (errno.ENOSYS, errno.EINVAL, errno.EPERM):
            return None  # old kernel or seccomp: fall back to polling
        raise


def _lc_ctype_marker(env: dict[str, str]) -> str:
    return "=" + env["LC_CTYPE"] if "LC_CTYPE" in env else "-"


def spawn(spec: SpawnSpec) -> ProcessHandle:
    """Start the process (blocking; run it in a worker thread). Raises SpawnError."""
    if not spec.argv:
        raise SpawnError("no command to run")
    env = dict(spec.env)
    try:
        spec.cwd.mkdir(parents=True, exist_ok=True)
        spec.stdout.parent.mkdir(parents=True, exist_ok=True)
        spec.stderr.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpawnError(f"cannot prepare {spec.cwd}: {exc}") from exc
    executable = resolve_executable(spec.argv[0], path=env.get("PATH", os.defpath), cwd=spec.cwd)
    if executable is None:
        raise SpawnError(f"executable not found: {spec.argv[0]}")
    shim_argv = [
        sys.executable,
        "-I",
        "-S",
        "-c",
        _EXEC_SHIM,
        str(spec.cwd),
        str(spec.memory_bytes),
        str(spec.pid_file or ""),
        f"{spec.identity.uid}:{spec.identity.gid}" if spec.identity else "",
        _lc_ctype_marker(env),
        executable,
        *spec.argv,
    ]
    append = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    report_read, report_write = os.pipe()
    if report_write == _REPORT_FD:
        # dup2 onto the same number would keep close-on-exec set; use another number.
        report_write, spare = os.dup(report_write), report_write
        os.close(spare)
    try:
        pid = os.posix_spawn(
            sys.executable,
            shim_argv,
            env,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, str(spec.stdout), append, 0o644),
                (os.POSIX_SPAWN_OPEN, 2, str(spec.stderr), append, 0o644),
                (os.POSIX_SPAWN_DUP2, report_write, _REPORT_FD),
            ],
            setsid=True,
        )
    except OSError as exc:
        os.close(report_read)
        raise SpawnError(f"cannot start {spec.argv[0]}: {exc}") from exc
    finally:
        os.close(report_write)
    # Our unreaped child cannot vanish or be replaced, so reading its identity now is safe.
    found = read_start_time(pid)
    handle = ProcessHandle(pid, found[0] if found is not None else 0, _open_pidfd(pid))
    # Wait for the exec, so that the process is the app (its limits, its cwd) on return.
    try:
        failure = _read_report(report_read)
    finally:
        os.close(report_read)
    if failure is not None:
        _signal_group(pid, signal.SIGKILL)
        handle.close()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        raise SpawnError(failure)
    return handle


def _read_report(fd: int) -> str | None:
    """None once the shim has exec'd (the pipe closed empty), else what went wrong."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + _EXEC_DEADLINE
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return f"the process did not start within {_EXEC_DEADLINE:g}s"
        chunk = os.read(fd, 4096)
        if not chunk:
            return b"".join(chunks).decode("utf-8", "replace") or None
        chunks.append(chunk)


def adopt(pid: int, start_time: int) -> ProcessHandle | None:
    """A handle on a process started earlier, or None when it is gone (blocking, briefly).

    The pidfd is opened before the start time is compared, so a match proves the pidfd
    refers to our process even if the pid is reused right after.
    """
    try:
        pidfd = _open_pidfd(pid)
    except ProcessLookupError:
        return None
    found = read_start_time(pid)
    if found is None or found[0] != start_time or found[1] == "Z":
        if pidfd is not None:
            os.close(pidfd)
        if found is not None and found[0] == start_time:
            # A zombie child of this very process (an earlier scheduler in it): reap it.
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        return None
    return ProcessHandle(pid, start_time, pidfd)


async def terminate(handle: ProcessHandle, grace: float) -> ExitInfo:
    """SIGTERM the process group, SIGKILL it after `grace` seconds; wait for the exit."""
    handle.signal_group(signal.SIGTERM)
    try:
        info = await asyncio.wait_for(handle.wait(), grace)
    except TimeoutError:
        handle.signal_group(signal.SIGKILL)
        info = await handle.wait()
    kill_leftovers(handle)
    return info


def kill_leftovers(handle: ProcessHandle) -> None:
    """SIGKILL what the leader left behind in its group, as Nomad ends a task's whole tree."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(handle.pid, signal.SIGKILL)


class PortAllocator:
    """Hands out free TCP ports, never one already given to another instance of ours.

    The kernel picks a free port when binding port 0; an instance in restart backoff does
    not hold its port open, so the allocator remembers what it gave out.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._host = host
        self._taken: set[int] = set()

    def allocate(self) -> int:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((self._host, 0))
                port: int = sock.getsockname()[1]
            if port not in self._taken:
                self._taken.add(port)
                return port

    def reserve(self, port: int) -> None:
        self._taken.add(port)

    def release(self, port: int | None) -> None:
        if port is not None:
            self._taken.discard(port)
