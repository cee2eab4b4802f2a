"""Where the client connects: flag, then environment, then the login, then the default."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest

from client.config import DEFAULT_SERVER, Target, config_path, resolve_target, save_login
from client.errors import ClientError


def test_precedence_flag_env_file_default(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    assert resolve_target(None, None, env) == Target(DEFAULT_SERVER, None)
    save_login(Target("https://stored.example", "t-stored"), env)
    assert resolve_target(None, None, env) == Target("https://stored.example", "t-stored")
    env |= {"LAIN_CONSOLE_URL": "http://env.example:9/", "LAIN_CONSOLE_TOKEN": "t-env"}
    assert resolve_target(None, None, env) == Target("http://env.example:9", "t-env")
    assert resolve_target("http://flag.example", "t-flag", env) == Target(
        "http://flag.example", "t-flag"
    )


@pytest.mark.parametrize("token", ['quote " back \\ slash', "line\nbreak\ttab", "ünï 😀", "\x01"])
def test_the_login_file_is_toml_that_reads_back_and_private(tmp_path: Path, token: str) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home")}
    path = save_login(Target("http://x.example", token), env)
    assert path == config_path(env) == tmp_path / "xdg" / "lain-console" / "config.toml"
    assert tomllib.loads(path.read_text()) == {"server": "http://x.example", "token": token}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_loose_old_file_is_made_private(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    path = config_path(env)
    path.parent.mkdir(parents=True)
    path.write_text('server = "http://old"\n')
    path.chmod(0o644)
    save_login(Target("http://new", "secret"), env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_bad_server_urls_and_a_broken_file_are_named(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "LAIN_CONSOLE_URL": "localhost:8000"}
    with pytest.raises(ClientError) as bad_env:
        resolve_target(None, None, env)
    assert (bad_env.value.code, bad_env.value.message) == (
        "INVALID",
        "LAIN_CONSOLE_URL: 'localhost:8000' is not an http:// or https:// URL",
    )
    config_path(env).parent.mkdir(parents=True)
    config_path(env).write_text("server = \n")
    with pytest.raises(ClientError) as broken:
        resolve_target("http://ok", None, env)
    assert broken.value.code == "INVALID"
    assert broken.value.message.startswith(str(config_path(env)))
