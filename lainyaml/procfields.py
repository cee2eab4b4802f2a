"""Proc fields other than ports and paths: commands, env, labels, filters, health checks,
mountpoints and DNS search domains. Each parser reports problems and returns a usable value."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from lainyaml.checks import describe, integer, mapping, show, string, string_items, string_list
from lainyaml.errors import ProblemSink
from lainyaml.model import ContainerHealthcheck
from lainyaml.naming import app_domain

__all__ = [
    "DEFAULT_FILTER",
    "default_mountpoints",
    "parse_command",
    "parse_container_healthcheck",
    "parse_dns_search",
    "parse_env",
    "parse_filters",
    "parse_healthcheck",
    "parse_labels",
    "resolve_mountpoints",
]

DEFAULT_FILTER = "constraint:group==default"
_GROUP_FILTERS = ("constraint:group==", "constraint:group!=")
# lain-sdk matches with re.match, so only a prefix of the filter has to fit.
_FILTER = re.compile(r"(affinity|constraint):(\S+)(==|!=)(\S+)")
# Greedy like lain-sdk's `(.*):(.*)`: "a:b:c" is key "a:b", value "c".
_LABEL = re.compile(r"(.*):(.*)")
_ENV_KEY = re.compile(r"[^=\s][^=]*")
_HEALTHCHECK_OPTIONS = ("interval", "timeout", "retries")


def parse_command(value: object, path: str, sink: ProblemSink) -> tuple[str, ...] | None:
    """`entrypoint`/`cmd`: exec form (list of strings) kept, shell form split on whitespace."""
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list):
        return string_list(value, path, sink)
    sink.add(path, f"must be a string or a list of strings, not {describe(value)}")
    return None


def parse_env(value: object, path: str, sink: ProblemSink) -> tuple[str, ...]:
    """`KEY=VALUE` strings; a mapping KEY -> scalar is converted (the old parser accepted it)."""
    if value is None:
        return ()
    if isinstance(value, dict):
        env: list[str] = []
        for key, item in value.items():
            where = f"{path}.{key}"
            if not isinstance(key, str) or not _ENV_KEY.fullmatch(key):
                sink.add(where, f"invalid variable name {show(key)}")
            elif isinstance(item, bool) or not isinstance(item, str | int | float):
                sink.add(where, f"must be a string or a number, not {describe(item)}")
            else:
                env.append(f"{key}={item}")
        return tuple(env)
    env_items = string_items(value, path, sink) or []
    for where, item in env_items:
        key, sep, _ = item.partition("=")
        if not sep or not _ENV_KEY.fullmatch(key):
            sink.add(where, f"must be KEY=VALUE, not {show(item)}")
    return tuple(item for _where, item in env_items)


def _string_or_items(value: object, path: str, sink: ProblemSink) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    return string_items(value, path, sink) or []


def parse_labels(value: object, path: str, sink: ProblemSink) -> Mapping[str, str]:
    """Container labels from `"key:value"` strings (one, or a list) or a mapping of strings."""
    labels: dict[str, str] = {}
    if value is None:
        return MappingProxyType(labels)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key:
                sink.add(f"{path}.{key}", f"label names must be non-empty strings: {show(key)}")
            elif isinstance(item, bool) or not isinstance(item, str | int | float):
                sink.add(f"{path}.{key}", f"must be a string or a number, not {describe(item)}")
            else:
                labels[key] = str(item)
        return MappingProxyType(labels)
    for where, item in _string_or_items(value, path, sink):
        match = _LABEL.fullmatch(item)
        if match is None or not match.group(1):
            sink.add(where, f"not supported labels desc {show(item)}")
        else:
            labels[match.group(1)] = match.group(2)
    return MappingProxyType(labels)


def parse_filters(value: object, path: str, sink: ProblemSink) -> tuple[str, ...]:
    """Swarm filters; `constraint:group==default` is appended unless a group filter is given.

    Unlike lain-sdk, an explicit empty list still gets the default group constraint.
    """
    items = [] if value is None else _string_or_items(value, path, sink)
    for where, item in items:
        if _FILTER.match(item) is None:
            sink.add(
                where,
                f"not supported filters desc {show(item)}: "
                "must be (affinity|constraint):<key>(==|!=)<value>",
            )
    filters = tuple(item for _where, item in items)
    if not any(f.startswith(_GROUP_FILTERS) for f in filters):
        filters = (*filters, DEFAULT_FILTER)
    return filters


def parse_healthcheck(value: object, path: str, sink: ProblemSink) -> str:
    """A web proc's HTTP health check path; deployd appends it to http://localhost:<port>."""
    if value is None or value == "":
        return ""
    text = string(value, path, sink)
    if text is None:
        return ""
    if not text.startswith("/"):
        sink.add(path, f"must be a URL path starting with '/', not {show(text)}")
    return text


def parse_container_healthcheck(
    value: object, path: str, sink: ProblemSink
) -> ContainerHealthcheck | None:
    """`{cmd: <string>, options: {interval, timeout, retries}}`; `cmd: none` disables checks."""
    if value is None:
        return None
    checked = mapping(value, path, sink)
    if checked is None:
        return None
    for key in checked:
        if key not in ("cmd", "options"):
            sink.add(f"{path}.{key}", "unknown field; expected cmd or options")
    if "cmd" not in checked:
        sink.add(f"{path}.cmd", "is required")
        return None
    cmd = string(checked["cmd"], f"{path}.cmd", sink, non_empty=True)
    raw_options = checked.get("options")
    options = {} if raw_options is None else mapping(raw_options, f"{path}.options", sink)
    values: dict[str, int] = {}
    for key, item in (options or {}).items():
        where = f"{path}.options.{key}"
        if key not in _HEALTHCHECK_OPTIONS:
            sink.add(where, f"unknown option; expected one of {_HEALTHCHECK_OPTIONS}")
        elif (
            number := integer(item, where, sink, minimum=0, rule="a whole number >= 0")
        ) is not None:
            values[key] = number
    if cmd is None:
        return None
    return ContainerHealthcheck(cmd, **values)


def default_mountpoints(appname: str, domains: Sequence[str]) -> tuple[str, ...]:
    """`<appdomain>.<D>` for every cluster domain, then `<appdomain>.lain`."""
    domain = app_domain(appname)
    return (*(f"{domain}.{d}" for d in domains), f"{domain}.lain")


def resolve_mountpoints(
    proc_name: str,
    value: object,
    appname: str,
    domains: Sequence[str],
    path: str,
    sink: ProblemSink,
) -> tuple[str, ...]:
    """A web proc's mountpoints (COMPAT 5.4).

    The proc named `web` gets its list plus every default missing from it; another web proc
    must have a non-empty list of its own. Entries starting with `/` are then replaced by
    `<default><path>` for every default (a bare `/` is dropped). Duplicates are removed.
    """
    defaults = default_mountpoints(appname, domains)
    given: tuple[str, ...] = ()
    if value is not None:
        given = string_list(value, path, sink, non_empty=True) or ()
    if proc_name == "web":
        points = [*given, *(d for d in defaults if d not in given)]
    elif not given:
        if value is None or value == []:
            sink.add(
                path,
                "proc (type is web but name is not web) should have own mountpoint "
                "(a non-empty list)",
            )
        return ()
    else:
        points = list(given)
    relative = [p for p in points if p.startswith("/")]
    points = [p for p in points if not p.startswith("/")]
    points += [f"{d}{p}" for p in relative if p != "/" for d in defaults]
    if not points:
        # Only bare "/" entries: the proc would not be reachable at all.
        sink.add(path, "proc (type is web but name is not web) should have own mountpoint")
    return tuple(dict.fromkeys(points))


def parse_dns_search(value: object, appname: str, path: str, sink: ProblemSink) -> tuple[str, ...]:
    """The given search domains plus `<appdomain>.lain`, which is always present."""
    own = f"{app_domain(appname)}.lain"
    given = () if value is None else string_list(value, path, sink, non_empty=True) or ()
    return given if own in given else (*given, own)
