"""How an operator shapes the Nomad jobs lain-console renders: rollouts, placement,
storage, routing and image pulls, read from `LAIN_CONSOLE_NOMAD_*` variables."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["JobOptions"]

_PREFIX = "LAIN_CONSOLE_NOMAD_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}
# What a mountpoint becomes without a template: a tag any router can select on.
DEFAULT_ROUTE_TAG = "lain-mountpoint={mountpoint}"


@dataclass(frozen=True, slots=True)
class JobOptions:
    """Operator settings applied to every rendered job.

    - `max_parallel`: instances replaced at once in a rolling update (Update.MaxParallel).
    - `datacenters`, `node_pool`, `priority`, `distinct_hosts`: placement.
    - `volumes_root`: a host directory on every client; each persistent dir is bound from
      `<root>/<app>/<proc>/<instance index><dir>` (needs the docker plugin's
      `volumes { enabled = true }`). Empty: procs with persistent dirs are refused.
    - `route_tags`: service tag templates, one tag per mountpoint and template, with
      `{mountpoint}`, `{host}`, `{path}` and `{service}` filled in.
    - `force_pull`, `registry_username`/`registry_password`: docker image pulls.
    """

    max_parallel: int = 1
    datacenters: tuple[str, ...] = ("*",)
    node_pool: str = ""
    priority: int = 50
    distinct_hosts: bool = False
    volumes_root: str = ""
    route_tags: tuple[str, ...] = (DEFAULT_ROUTE_TAG,)
    force_pull: bool = False
    registry_username: str = ""
    registry_password: str = field(default="", repr=False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> JobOptions:
        """Raises ValueError naming the variable and the rule when a value is unusable."""

        def get(name: str) -> str:
            return environ.get(_PREFIX + name, "").strip()

        def number(name: str, default: int, low: int, high: int) -> int:
            raw = get(name)
            if not raw:
                return default
            try:
                value = int(raw)
            except ValueError:
                value = low - 1
            if not low <= value <= high:
                raise ValueError(f"{_PREFIX}{name} must be an integer {low}-{high}, got {raw!r}")
            return value

        def flag(name: str) -> bool:
            raw = get(name).lower()
            if raw not in _TRUE | _FALSE:
                raise ValueError(f"{_PREFIX}{name} must be true or false, got {raw!r}")
            return raw in _TRUE

        root = get("VOLUMES_ROOT")
        if root and not root.startswith("/"):
            raise ValueError(f"{_PREFIX}VOLUMES_ROOT must be an absolute path, got {root!r}")
        username, password = get("REGISTRY_USERNAME"), get("REGISTRY_PASSWORD")
        if bool(username) != bool(password):
            raise ValueError(
                f"{_PREFIX}REGISTRY_USERNAME and {_PREFIX}REGISTRY_PASSWORD must be set together"
            )
        datacenters = tuple(dc.strip() for dc in get("DATACENTERS").split(",") if dc.strip())
        return cls(
            max_parallel=number("MAX_PARALLEL", 1, 1, 100),
            datacenters=datacenters or ("*",),
            node_pool=get("NODE_POOL"),
            priority=number("PRIORITY", 50, 1, 100),
            distinct_hosts=flag("DISTINCT_HOSTS"),
            volumes_root=root.rstrip("/"),
            route_tags=_route_tags(get("ROUTE_TAGS")),
            force_pull=flag("FORCE_PULL"),
            registry_username=username,
            registry_password=password,
        )


def _route_tags(raw: str) -> tuple[str, ...]:
    """One template, or a JSON list of them (tags may hold commas: Traefik rules do)."""
    if not raw:
        return (DEFAULT_ROUTE_TAG,)
    if not raw.startswith("["):
        templates: list[str] = [raw]
    else:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if not isinstance(parsed, list) or not all(isinstance(t, str) for t in parsed):
            raise ValueError(f"{_PREFIX}ROUTE_TAGS must be a template or a JSON list of them")
        templates = parsed
    for template in templates:
        try:
            template.format(mountpoint="", host="", path="", service="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"{_PREFIX}ROUTE_TAGS: {template!r} may use only {{mountpoint}}, {{host}}, "
                f"{{path}} and {{service}} ({exc})"
            ) from None
    return tuple(templates)
