"""`watch` in a real terminal (tmux): the screen follows the console, and `q` quits."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.conftest import TICKER, Cli, eventually
from tests.e2e.console import _COMMAND

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="needs tmux (.ci/run installs it with apt-get)"
)


class Terminal:
    """A detached tmux session of its own server socket, 160x50, running one command."""

    def __init__(self, tmp: Path) -> None:
        self.socket = tmp / "tmux.sock"
        self.name = f"watch-{uuid.uuid4().hex[:8]}"

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout

    def start(self, command: str) -> None:
        self.tmux("new-session", "-d", "-s", self.name, "-x", "160", "-y", "50", command)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.name)

    def kill(self) -> None:
        subprocess.run(
            ["tmux", "-S", str(self.socket), "kill-server"], capture_output=True, timeout=30
        )


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    terminal = Terminal(tmp_path)
    try:
        yield terminal
    finally:
        terminal.kill()


def _instance_rows(screen: str, prefix: str) -> list[str]:
    """The INSTANCE column of the instances table: `worker.N`, `hello.worker.N` for all apps."""
    return [
        line.split()[0].removeprefix(prefix)
        for line in screen.splitlines()
        if line.strip().startswith(f"{prefix}worker.")
    ]


@pytest.mark.parametrize(("target", "quit_key"), [("hello", "q"), (None, "C-c")])
def test_watch_redraws_when_an_instance_changes_and_quits_on_q_or_ctrl_c(
    cli: Cli, terminal: Terminal, tmp_path: Path, target: str | None, quit_key: str
) -> None:
    cli.publish(tmp_path, TICKER)
    cli.ok("deploy", "hello", "--wait")
    exit_file = tmp_path / "watch.exit"
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in cli.environ().items() if k in _PASSED)
    args = f"watch {target}" if target else "watch"
    # The shell stays after watch ends, so the test can read how it ended.
    # The shell tmux starts may export COLUMNS from before tmux sized the pane (80): unset,
    # so the client measures the terminal itself, as it does in a user's shell.
    terminal.start(
        f"env -u COLUMNS -u LINES {env} {_COMMAND} {args}; echo $? > {exit_file}; sleep 600"
    )

    prefix = "" if target else "hello."

    def shows(wanted: list[str]) -> None:
        try:
            eventually(lambda: _instance_rows(terminal.screen(), prefix) == wanted)
        except AssertionError:
            size = terminal.tmux(
                "display", "-p", "-t", terminal.name, "#{window_width}x#{window_height}"
            )
            raise AssertionError(
                f"{wanted} not on the {size} screen:\n{terminal.screen()}"
            ) from None

    shows(["worker.1"])
    first = terminal.screen()
    assert "q or Ctrl-C to quit" in first

    cli.ok("scale", "hello", "worker", "2")  # through the API, not the terminal
    shows(["worker.1", "worker.2"])
    eventually(lambda: "2/2" in terminal.screen())
    assert terminal.screen().count("q or Ctrl-C to quit") == 1  # redrawn in place, not appended

    terminal.tmux("send-keys", "-t", terminal.name, quit_key)
    eventually(exit_file.exists)
    assert exit_file.read_text().strip() == "0"


_PASSED = ("HOME", "PATH", "LAIN_CONSOLE_URL", "LANG", "LC_ALL")
