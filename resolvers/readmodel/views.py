"""What resolvers return: frozen values built from rows and the parsed lain.yaml.

Running state is the backend's own `InstanceState` / `ProcState`, re-exported here so the
front doors import nothing from `backends/`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Generic, TypeVar

from backends.types import (
    Canary,
    CanaryState,
    InstanceAction,
    InstanceState,
    InstanceStatus,
    ProcState,
    RolloutStatus,
)
from lainyaml import AppType, LainConfig, LainYamlError, ProcSpec, ProcType, parse_lain_yaml
from store.models import AppStatus

__all__ = [
    "AppStatus",
    "AppType",
    "AppView",
    "Canary",
    "CanaryState",
    "InstanceAction",
    "InstanceState",
    "InstanceStatus",
    "Page",
    "ProcSpec",
    "ProcState",
    "ProcType",
    "ProcView",
    "ReleaseView",
    "RepoView",
    "RolloutStatus",
    "parse_release_config",
]

T = TypeVar("T")
U = TypeVar("U")


@lru_cache(maxsize=2048)
def _parse_cached(text: str, domains: tuple[str, ...]) -> LainConfig | LainYamlError:
    try:
        return parse_lain_yaml(text, domains=domains)
    except LainYamlError as exc:
        return exc


def parse_release_config(text: str, domains: tuple[str, ...]) -> LainConfig:
    """Parse a stored lain.yaml; releases never change, so every text is parsed once.

    Raises:
        LainYamlError: the text is not a valid lain.yaml.
    """
    result = _parse_cached(text, domains)
    if isinstance(result, LainYamlError):
        raise result
    return result


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list ordered by a stable key; cursors are opaque strings."""

    items: tuple[T, ...]
    has_next: bool
    has_previous: bool
    start_cursor: str | None
    end_cursor: str | None
    cursors: tuple[str, ...] = ()  # one per item, for edges

    def map(self, each: Callable[[T], U]) -> Page[U]:
        """The same page of other items: `each` of these, in order."""
        return Page(
            tuple(each(item) for item in self.items),
            self.has_next,
            self.has_previous,
            self.start_cursor,
            self.end_cursor,
            self.cursors,
        )


@dataclass(frozen=True, slots=True)
class RepoView:
    name: str
    created_at: datetime
    giturl: str


@dataclass(frozen=True, slots=True)
class ReleaseView:
    app: str
    meta_version: str
    created_at: datetime
    image: str  # as published; "" means the registry's default image
    lain_yaml: str
    config: LainConfig


@dataclass(frozen=True, slots=True)
class AppView:
    name: str
    apptype: AppType
    meta_version: str | None
    status: AppStatus
    last_error: str
    created_at: datetime
    updated_at: datetime
    giturl: str


@dataclass(frozen=True, slots=True)
class ProcView:
    """A proc's desired state: the release's spec with the operator's overrides applied."""

    app: str
    name: str
    type: ProcType
    meta_version: str
    spec: ProcSpec
    image: str
    num_instances: int
    cpu: int
    memory: str  # as set: the lain.yaml string or the resize override, e.g. "64m"
    memory_bytes: int
    deployed: bool
    last_error: str

    @property
    def job_id(self) -> str:
        return f"{self.app}.{self.type}.{self.name}"
