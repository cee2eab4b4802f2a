"""login, tokens and maintainers with access control on."""

from __future__ import annotations

import os
import stat
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.conftest import TICKER, Cli, start_console
from tests.e2e.console import _COMMAND, Console


def _admin(console: Console, *args: str) -> str:
    """`lain-console user|token ...` on the console's own data dir, as its operator runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAIN_CONSOLE_")}
    env["LAIN_CONSOLE_DATA_DIR"] = str(console.data_dir)
    done = subprocess.run(
        [str(_COMMAND), *args], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Console]:
    console = Console(tmp_path / "data")
    console.extra_env["LAIN_CONSOLE_AUTH"] = "on"
    try:
        start_console(console)
        yield console
    finally:
        console.close()


def test_login_stores_the_target_privately_and_later_verbs_use_it(
    guarded: Console, tmp_path: Path
) -> None:
    _admin(guarded, "user", "add", "alice", "--admin")
    _admin(guarded, "user", "add", "bob")
    token = _admin(guarded, "token", "create", "alice")
    home = tmp_path / "home"
    home.mkdir()
    cli = Cli(guarded, home)

    anonymous = cli.run("apps")
    assert anonymous.returncode == 5
    assert anonymous.stderr.startswith("error: UNAUTHENTICATED: ")
    wrong = cli.run("login", "--server", guarded.url, "--token", "not-a-token")
    assert wrong.returncode == 5
    assert not (home / ".config" / "lain-console" / "config.toml").exists()

    logged = cli.run("login", "--server", guarded.url, "--token", token, LAIN_CONSOLE_URL="")
    assert logged.returncode == 0, logged.stderr
    assert f"logged in to {guarded.url} as alice" in logged.stdout
    config = home / ".config" / "lain-console" / "config.toml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert tomllib.loads(config.read_text()) == {"server": guarded.url, "token": token}

    # No flags and no environment: the stored server and token.
    cli.env["LAIN_CONSOLE_URL"] = ""
    cli.publish(tmp_path, TICKER)
    cli.ok("deploy", "hello", "--wait")
    assert [a["name"] for a in cli.json("apps")] == ["hello"]

    added = cli.json("maintainers", "hello", "add", "bob")
    assert {(m["username"], m["role"]) for m in added} >= {("bob", "NORMAL")}
    listed = cli.ok("maintainers", "hello").stdout
    assert "bob" in listed
    assert "NORMAL" in listed

    bob = Cli(
        guarded,
        tmp_path / "bob-home",
        {"LAIN_CONSOLE_TOKEN": _admin(guarded, "token", "create", "bob")},
    )
    (tmp_path / "bob-home").mkdir()
    assert [a["name"] for a in bob.json("apps")] == ["hello"]
    cli.ok("maintainers", "hello", "remove", "bob")
    assert "bob" not in {m["username"] for m in cli.json("maintainers", "hello")}
    denied = bob.run("scale", "hello", "worker", "0")
    assert denied.returncode == 5
    assert denied.stderr.startswith("error: FORBIDDEN: ")

    # A flag beats the stored token.
    flagged = cli.run("apps", "--token", "not-a-token")
    assert flagged.returncode == 5


def test_login_without_a_token_and_the_config_file_follows_xdg_config_home(
    console: Console, tmp_path: Path
) -> None:
    cli = Cli(console, tmp_path, {"XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    cli.ok("login", "--server", console.url + "/", "--token", "")
    config = tmp_path / "xdg" / "lain-console" / "config.toml"
    assert tomllib.loads(config.read_text()) == {"server": console.url}
    assert not (tmp_path / ".config").exists()


def test_login_refuses_a_console_that_wants_a_token(guarded: Console, tmp_path: Path) -> None:
    refused = Cli(guarded, tmp_path).run("login", "--server", guarded.url, "--token", "")
    assert refused.returncode == 5
    assert refused.stderr == "error: UNAUTHENTICATED: the console refused the token\n"
