"""The parsed lain.yaml: immutable values with every default already applied.

Mappings are `types.MappingProxyType` over dicts nobody else holds, so the values are read-only;
they are not hashable, which is why these classes are compared but never used as dict keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from lainyaml.naming import pod_group_name

__all__ = [
    "DEFAULT_MEMORY",
    "DEFAULT_MEMORY_BYTES",
    "AppKind",
    "BackupEntry",
    "BackupMode",
    "BuildSpec",
    "CloudVolumeType",
    "CloudVolumes",
    "ContainerHealthcheck",
    "LainConfig",
    "PortMapping",
    "PortSpec",
    "ProcSpec",
    "ProcType",
    "Protocol",
    "ResourceUse",
    "is_template_text",
]

DEFAULT_MEMORY = "32m"
DEFAULT_MEMORY_BYTES = 32 * 1024**2


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


def is_template_text(value: object) -> bool:
    """True for a string holding a jinja expression or statement, as resource templates do."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


class AppKind(StrEnum):
    """`apptype` as written in lain.yaml; `service` and `resource-instance` are derived later."""

    APP = "app"
    RESOURCE = "resource"


class ProcType(StrEnum):
    WEB = "web"
    WORKER = "worker"
    ONESHOT = "oneshot"
    PORTAL = "portal"


class Protocol(StrEnum):
    TCP = "tcp"
    UDP = "udp"


class BackupMode(StrEnum):
    FULL = "full"
    INCREMENT = "increment"


class CloudVolumeType(StrEnum):
    MULTI = "multi"  # one directory per instance
    SINGLE = "single"  # one directory shared by all instances


@dataclass(frozen=True, slots=True)
class PortSpec:
    """The container port a proc exposes (`port:`); only one per proc reaches the container."""

    number: int
    protocol: Protocol = Protocol.TCP


@dataclass(frozen=True, slots=True)
class PortMapping:
    """A stream-router mapping (`ports:`): cluster-wide `src` (9500-10000) to container `dst`."""

    src: int
    dst: int
    proto: Protocol = Protocol.TCP


@dataclass(frozen=True, slots=True)
class BackupEntry:
    """A scheduled backup of a persistent dir; `volume` is the path as written in lain.yaml."""

    volume: str
    mode: BackupMode
    schedule: str
    expire: str = ""
    pre_run: str = ""
    post_run: str = ""


@dataclass(frozen=True, slots=True)
class CloudVolumes:
    type: CloudVolumeType
    dirs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ContainerHealthcheck:
    """`container_healthcheck`; options stay as written (deployd raises them to 10s/3s/3)."""

    cmd: str
    interval: int | None = None
    timeout: int | None = None
    retries: int | None = None

    @property
    def disabled(self) -> bool:
        # LAIN's convention: `cmd: none` switches the docker health check off.
        return self.cmd == "none"


@dataclass(frozen=True, slots=True)
class ProcSpec:
    """One proc with every lain.yaml field resolved to its value or LAIN's default.

    Resource templates (`apptype: resource`) may hold jinja strings in `num_instances`, `cpu`
    and `memory`. Such a field keeps its raw text (`num_instances_raw`, `cpu_raw`, `memory`)
    while the numeric field holds LAIN's class default (1, 0, 32m); `templated` says which.
    """

    name: str
    type: ProcType
    section: str  # the lain.yaml key this proc came from, e.g. "service.echo"
    image: str | None = None  # None: the release image of the app
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    user: str = ""
    working_dir: str = ""
    num_instances: int = 1
    num_instances_raw: str | None = None
    cpu: int = 0
    cpu_raw: str | None = None
    memory: str = DEFAULT_MEMORY  # as written, e.g. "32m"; raw jinja text in templates
    memory_bytes: int = DEFAULT_MEMORY_BYTES
    port: PortSpec | None = None
    ports: tuple[PortMapping, ...] = ()
    mountpoints: tuple[str, ...] = ()
    https_only: bool = True
    healthcheck: str = ""
    container_healthcheck: ContainerHealthcheck | None = None
    env: tuple[str, ...] = ()
    persistent_dirs: tuple[str, ...] = ("/lain/logs",)
    backups: tuple[BackupEntry, ...] = ()
    cloud_volumes: CloudVolumes | None = None
    secret_files: tuple[str, ...] = ()
    secret_files_bypass: bool = False
    logs: tuple[str, ...] = ()
    stateful: bool = False
    setup_time: int = 0
    kill_timeout: int = 10
    labels: Mapping[str, str] = field(default_factory=_empty)
    filters: tuple[str, ...] = ("constraint:group==default",)
    dns_search: tuple[str, ...] = ()
    service_name: str | None = None  # portals only
    allow_clients: str | None = None  # portals only, "**" by default; stored, not enforced

    def pod_group_name(self, appname: str) -> str:
        """`<app>.<proctype>.<proc>`, the deployd pod group and our backend job id."""
        return pod_group_name(appname, self.type, self.name)

    @property
    def templated(self) -> tuple[str, ...]:
        """Names of the fields that still hold unrendered jinja text."""
        flags = (
            ("num_instances", self.num_instances_raw is not None),
            ("cpu", self.cpu_raw is not None),
            ("memory", is_template_text(self.memory)),
        )
        return tuple(name for name, flag in flags if flag)

    @property
    def effective_cpu(self) -> int:
        """The CPU level deployd applies: values below 1 become 2, values above 8 become 8."""
        if self.cpu < 1:
            return 2
        return min(self.cpu, 8)

    @property
    def uses_persistent_storage(self) -> bool:
        """Any volume besides /lain/logs pins the pod to its node in LAIN ("stateful" there)."""
        return any(d != "/lain/logs" for d in self.persistent_dirs)


@dataclass(frozen=True, slots=True)
class ResourceUse:
    """One `use_resources` entry: the portals used and the template parameters."""

    services: tuple[str, ...]
    context: Mapping[str, str | int] = field(default_factory=_empty)


@dataclass(frozen=True, slots=True)
class BuildSpec:
    """The `build` section; build-time only, kept so releases can be checked against it."""

    base: str
    script: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LainConfig:
    """A whole lain.yaml, validated. `text` is the document exactly as given."""

    appname: str
    apptype: AppKind = AppKind.APP
    giturl: str | None = None
    build: BuildSpec | None = None
    procs: tuple[ProcSpec, ...] = ()  # file order; service.<x> gives proc x, then portal-x
    use_services: Mapping[str, tuple[str, ...]] = field(default_factory=_empty)
    use_resources: Mapping[str, ResourceUse] = field(default_factory=_empty)
    notify: Mapping[str, str] = field(default_factory=_empty)
    text: str = field(default="", repr=False)

    def proc(self, name: str) -> ProcSpec | None:
        """The proc called `name`, or None."""
        for proc in self.procs:
            if proc.name == name:
                return proc
        return None

    @property
    def portals(self) -> tuple[ProcSpec, ...]:
        return tuple(p for p in self.procs if p.type is ProcType.PORTAL)

    def portal_for_service(self, service_name: str) -> ProcSpec | None:
        """The portal exporting `service_name` (what a client's `use_services` refers to)."""
        for proc in self.portals:
            if proc.service_name == service_name:
                return proc
        return None
