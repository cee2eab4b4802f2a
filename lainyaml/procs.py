"""Proc sections of a lain.yaml: which keys are procs, and each proc's fields (COMPAT 5.2, 5.3).

Field rules beyond the old parser, which took any type and failed later (or never):

- every field has the type the validator documents; booleans are not integers;
- `num_instances` >= 0; `cpu` >= 0 (kept as written; deployd's reading is `effective_cpu`);
- `memory` a size string humanfriendly accepts, at least 4 MB (`"32m"`, `"1.5G"`, `"128 MB"`);
- `setup_time` and `kill_timeout` are integers, clamped to 0-120 and 10-60 as lain-sdk does;
- unknown fields are refused (typos like `num_instance` would otherwise be silently ignored);
- fields that do not apply to the proc's type (`mountpoint` on a worker...) are ignored, as LAIN
  ignores them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from lainyaml.checks import boolean, integer, mapping, show, string
from lainyaml.errors import ProblemSink
from lainyaml.model import (
    DEFAULT_MEMORY,
    DEFAULT_MEMORY_BYTES,
    PortSpec,
    ProcSpec,
    ProcType,
    is_template_text,
)
from lainyaml.naming import NAME_RULE, is_valid_proc_name
from lainyaml.ports import parse_port, parse_ports
from lainyaml.procfields import (
    parse_command,
    parse_container_healthcheck,
    parse_dns_search,
    parse_env,
    parse_filters,
    parse_healthcheck,
    parse_labels,
    resolve_mountpoints,
)
from lainyaml.units import InvalidSize, parse_memory
from lainyaml.volumes import (
    parse_cloud_volumes,
    parse_logs,
    parse_persistent_dirs,
    parse_secret_files,
)

__all__ = ["PROC_FIELDS", "SECTION_TYPES", "parse_procs"]

# The first dot-segment that makes a top-level key a proc section; other keys are not procs.
SECTION_TYPES = ("web", "worker", "oneshot", "portal", "proc", "service")
_BARE_SECTIONS = ("web", "worker", "oneshot")

PROC_FIELDS = frozenset(
    {
        "type", "image", "entrypoint", "cmd", "user", "workdir", "working_dir",
        "num_instances", "cpu", "memory", "port", "ports", "mountpoint", "https_only",
        "healthcheck", "container_healthcheck", "env", "persistent_dirs", "volumes",
        "cloud_volumes", "secret_files", "secret_files_bypass", "logs", "stateful",
        "setup_time", "kill_timeout", "labels", "filters", "dns_search", "service_name",
        "allow_clients",
    }
)  # fmt: skip
_TYPE_VALUES = frozenset(t.value for t in ProcType)
_TYPE_NAMES = ", ".join(t.value for t in ProcType)
_COUNT_RULE = "a whole number >= 0"


@dataclass(frozen=True, slots=True)
class _Context:
    appname: str
    domains: Sequence[str]
    template: bool  # apptype resource: numeric fields may hold jinja text


def _clamped(value: object, where: str, sink: ProblemSink, low: int, high: int) -> int:
    # lain-sdk clamps instead of refusing, so out-of-range numbers stay deployable.
    number = None if value is None else integer(value, where, sink)
    return low if number is None else max(low, min(number, high))


def _templated_int(
    value: object, where: str, sink: ProblemSink, ctx: _Context, *, default: int, rule: str
) -> tuple[int, str | None]:
    if value is None:
        return default, None
    if ctx.template and isinstance(value, str) and is_template_text(value):
        return default, value
    number = integer(value, where, sink, minimum=0, rule=rule)
    return (default if number is None else number), None


def _memory(value: object, where: str, sink: ProblemSink, ctx: _Context) -> tuple[str, int]:
    if value is None:
        return DEFAULT_MEMORY, DEFAULT_MEMORY_BYTES
    if ctx.template and isinstance(value, str) and is_template_text(value):
        return value, DEFAULT_MEMORY_BYTES
    if not isinstance(value, str):
        sink.add(where, f"must be a size string such as '32m' or '1.5G', not {show(value)}")
        return DEFAULT_MEMORY, DEFAULT_MEMORY_BYTES
    try:
        return value, parse_memory(value)
    except InvalidSize as exc:
        sink.add(where, f"{exc} (sizes are 1024-based, e.g. '32m', '128M', '1.5G')")
        return DEFAULT_MEMORY, DEFAULT_MEMORY_BYTES


def _text(
    meta: dict[str, Any], key: str, where: str, sink: ProblemSink, *, non_empty: bool = False
) -> str:
    """A string field, or "" when absent (or wrong, after reporting it)."""
    value = meta.get(key)
    checked = None if value is None else string(value, where, sink, non_empty=non_empty)
    return checked or ""


def _flag(meta: dict[str, Any], key: str, where: str, sink: ProblemSink, default: bool) -> bool:
    value = meta.get(key)
    checked = None if value is None else boolean(value, where, sink)
    return default if checked is None else checked


def _build_proc(
    section: str, name: str, ptype: ProcType, meta: dict[str, Any], ctx: _Context, sink: ProblemSink
) -> ProcSpec:
    base = f"procs.{name}"

    def at(key: str) -> str:
        return f"{base}.{key}"

    for key in meta:
        if key not in PROC_FIELDS:
            sink.add(at(key), "unknown field")
    num_instances, num_instances_raw = _templated_int(
        meta.get("num_instances"), at("num_instances"), sink, ctx, default=1, rule=_COUNT_RULE
    )
    cpu, cpu_raw = _templated_int(
        meta.get("cpu"), at("cpu"), sink, ctx, default=0, rule=_COUNT_RULE
    )
    memory, memory_bytes = _memory(meta.get("memory"), at("memory"), sink, ctx)
    port: PortSpec | None = None
    if meta.get("port") is not None:
        port = parse_port(meta["port"], at("port"), sink)
    if port is None and ptype is ProcType.WEB:
        port = PortSpec(80)
    # `workdir` wins over `working_dir` (lain-sdk reads `workdir or working_dir`).
    workdir = _text(meta, "workdir", at("workdir"), sink)
    working_dir = workdir or _text(meta, "working_dir", at("working_dir"), sink)
    # Either key names the volumes; `persistent_dirs` wins unless it is empty, as in lain-sdk.
    dirs_key = "persistent_dirs" if meta.get("persistent_dirs") else "volumes"
    persistent_dirs, backups = parse_persistent_dirs(meta.get(dirs_key), at(dirs_key), sink)
    setup_time = _clamped(meta.get("setup_time"), at("setup_time"), sink, 0, 120)
    kill_timeout = _clamped(meta.get("kill_timeout"), at("kill_timeout"), sink, 10, 60)
    web = ptype is ProcType.WEB
    portal = ptype is ProcType.PORTAL
    return ProcSpec(
        name=name,
        type=ptype,
        section=section,
        image=_text(meta, "image", at("image"), sink, non_empty=True) or None,
        entrypoint=parse_command(meta.get("entrypoint"), at("entrypoint"), sink),
        cmd=parse_command(meta.get("cmd"), at("cmd"), sink),
        user=_text(meta, "user", at("user"), sink),
        working_dir=working_dir,
        num_instances=num_instances,
        num_instances_raw=num_instances_raw,
        cpu=cpu,
        cpu_raw=cpu_raw,
        memory=memory,
        memory_bytes=memory_bytes,
        port=port,
        ports=() if meta.get("ports") is None else parse_ports(meta["ports"], at("ports"), sink),
        mountpoints=(
            resolve_mountpoints(
                name, meta.get("mountpoint"), ctx.appname, ctx.domains, at("mountpoint"), sink
            )
            if web
            else ()
        ),
        https_only=_flag(meta, "https_only", at("https_only"), sink, False) if web else True,
        healthcheck=parse_healthcheck(meta.get("healthcheck"), at("healthcheck"), sink)
        if web
        else "",
        container_healthcheck=parse_container_healthcheck(
            meta.get("container_healthcheck"), at("container_healthcheck"), sink
        ),
        env=parse_env(meta.get("env"), at("env"), sink),
        persistent_dirs=persistent_dirs,
        backups=backups,
        cloud_volumes=parse_cloud_volumes(meta.get("cloud_volumes"), at("cloud_volumes"), sink),
        secret_files=parse_secret_files(meta.get("secret_files"), at("secret_files"), sink),
        secret_files_bypass=_flag(
            meta, "secret_files_bypass", at("secret_files_bypass"), sink, False
        ),
        logs=parse_logs(meta.get("logs"), at("logs"), sink),
        stateful=_flag(meta, "stateful", at("stateful"), sink, False),
        setup_time=setup_time,
        kill_timeout=kill_timeout,
        labels=parse_labels(meta.get("labels"), at("labels"), sink),
        filters=parse_filters(meta.get("filters"), at("filters"), sink),
        dns_search=parse_dns_search(meta.get("dns_search"), ctx.appname, at("dns_search"), sink),
        service_name=_service_name(meta, at("service_name"), sink) if portal else None,
        allow_clients=(_text(meta, "allow_clients", at("allow_clients"), sink) or "**")
        if portal
        else None,
    )


def _service_name(meta: dict[str, Any], where: str, sink: ProblemSink) -> str | None:
    if meta.get("service_name") is None:
        sink.add(where, "proc (type is portal) should have own service_name")
        return None
    return string(meta["service_name"], where, sink, non_empty=True)


def _proc_type(meta: dict[str, Any], where: str, sink: ProblemSink) -> ProcType:
    value = meta.get("type", "worker")
    if not isinstance(value, str) or value not in _TYPE_VALUES:
        sink.add(where, f"unknown proc type {show(value)}: expected one of {_TYPE_NAMES}")
        return ProcType.WORKER
    return ProcType(value)


_Section = tuple[str, ProcType, dict[str, Any]]


def _sections(key: str, value: object, sink: ProblemSink) -> Iterator[_Section]:
    """(proc name, type, fields) for each proc a section key defines."""
    head, *rest = key.split(".")
    meta = mapping(value, key, sink)
    if head == "service":
        if len(rest) != 1 or not rest[0]:
            sink.add(key, f"invalid service keyword: {key}")
            return
        if meta is None:
            return
        name = rest[0]
        worker = {k: v for k, v in meta.items() if k != "portal"}
        yield name, _proc_type(worker, f"procs.{name}.type", sink), worker
        portal = meta.get("portal")
        if portal is None:
            sink.add(f"{key}.portal", "is required: a service section defines its portal")
            return
        portal_meta = mapping(portal, f"{key}.portal", sink)
        if portal_meta is not None:
            # The shorthand names the service; a service_name written inside is overridden.
            yield f"portal-{name}", ProcType.PORTAL, {**portal_meta, "service_name": name}
        return
    if len(rest) > 1 or (not rest and head not in _BARE_SECTIONS) or rest == [""]:
        sink.add(key, f"invalid proc section key {key}: expected {head}.<name>")
        return
    if meta is None:
        return
    name = rest[0] if rest else head
    if head == "proc":
        yield name, _proc_type(meta, f"procs.{name}.type", sink), meta
        return
    ptype = ProcType(head)
    given = meta.get("type")
    if given is not None and given != ptype.value:
        sink.add(f"procs.{name}.type", f"type {show(given)} conflicts with section key {key}")
    yield name, ptype, meta


def parse_procs(
    data: dict[Any, Any], *, appname: str, domains: Sequence[str], template: bool,
    sink: ProblemSink,
) -> tuple[ProcSpec, ...]:  # fmt: skip
    """Every proc of the document in file order, `service.<x>` giving x then portal-x."""
    ctx = _Context(appname, domains, template)
    procs: dict[str, ProcSpec] = {}
    for key, value in data.items():
        if not isinstance(key, str) or key.split(".")[0] not in SECTION_TYPES:
            continue
        for name, ptype, meta in _sections(key, value, sink):
            if not is_valid_proc_name(name):
                sink.add(key, f"invalid proc name {show(name)}: {NAME_RULE}")
            if name in procs:
                sink.add(key, f"duplicated proc name {name}")
                continue
            procs[name] = _build_proc(key, name, ptype, meta, ctx, sink)
    return tuple(procs.values())
