"""Where the client connects and as whom: flags, then environment, then the config file."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from client.errors import ClientError

__all__ = ["DEFAULT_SERVER", "Target", "config_path", "resolve_target", "save_login"]

DEFAULT_SERVER = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class Target:
    server: str
    token: str | None


def config_path(env: Mapping[str, str] = os.environ) -> Path:
    """`$XDG_CONFIG_HOME/lain-console/config.toml`, `~/.config/...` without it."""
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "lain-console" / "config.toml"


def _stored(path: Path) -> dict[str, str]:
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ClientError("INVALID", f"{path}: {exc}") from None
    return {key: value for key, value in data.items() if isinstance(value, str)}


def checked_server(url: str, source: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ClientError("INVALID", f"{source}: {url!r} is not an http:// or https:// URL")
    return url.rstrip("/")


def resolve_target(
    server: str | None, token: str | None, env: Mapping[str, str] = os.environ
) -> Target:
    stored = _stored(config_path(env))
    if server is not None:
        url, source = server, "--server"
    elif env.get("LAIN_CONSOLE_URL"):
        url, source = env["LAIN_CONSOLE_URL"], "LAIN_CONSOLE_URL"
    elif "server" in stored:
        url, source = stored["server"], f"{config_path(env)}: server"
    else:
        url, source = DEFAULT_SERVER, "default server"
    chosen = token or env.get("LAIN_CONSOLE_TOKEN") or stored.get("token") or None
    return Target(server=checked_server(url, source), token=chosen)


def _toml_string(value: str) -> str:
    # A JSON string without ASCII escaping is a valid TOML basic string: the same quotes and
    # backslash escapes, control characters as \u00XX.
    return json.dumps(value, ensure_ascii=False)


def save_login(target: Target, env: Mapping[str, str] = os.environ) -> Path:
    """Write the server and token, readable by the user alone (the token is a secret)."""
    path = config_path(env)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    lines = [f"server = {_toml_string(target.server)}"]
    if target.token:
        lines.append(f"token = {_toml_string(target.token)}")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an older file may have been created more open
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")
    return path
