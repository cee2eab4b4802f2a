"""parse_lain_yaml: a lain.yaml text in, a validated LainConfig (or every problem) out.

Top-level rules (COMPAT 5.1), with these decisions where LAIN left room:

- `appname` is required: the validator's pattern, or a resource-instance name
  `resource.<r>.<client>`; `service`, `resource`, `portal` are refused.
- `apptype` is `app` (default) or `resource`.
- `build` is optional (releases arrive with their image), but when present it needs a string
  `base`, and `script` must be a list of strings. `release` and `test` are build-time only and
  not read.
- `use_services`, `use_resources` and `notify` must be mappings of the documented shapes.
- A document without procs parses, for apps (library-like) and resources alike; publishing
  one as a release is refused (resolvers/releases.py), since it would run nothing.
- Unknown top-level keys, and keys whose first dot-segment is not a proc type (`daemon.x`),
  are ignored as the parser ignores them. An explicit null counts as absent everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from lainyaml.checks import describe, integer, mapping, show, string, string_list
from lainyaml.errors import LainYamlError, Problem, ProblemSink
from lainyaml.model import AppKind, BuildSpec, LainConfig, ResourceUse
from lainyaml.naming import NAME_RULE, app_name_problem, is_valid_proc_name
from lainyaml.procs import parse_procs
from lainyaml.yamlload import load_yaml

__all__ = ["parse_lain_yaml"]

_ROOT = "<root>"
# Used only to keep checking procs when the appname itself is unusable.
_PLACEHOLDER_APPNAME = "app"


def _appname(data: dict[Any, Any], sink: ProblemSink) -> str | None:
    if data.get("appname") is None:
        sink.add("appname", "invalid lain conf: no appname")
        return None
    problem = app_name_problem(data["appname"])
    if problem is not None:
        sink.extend([problem])
        return None
    name: str = data["appname"]
    return name


def _apptype(value: object, sink: ProblemSink) -> AppKind:
    if value is None:
        return AppKind.APP
    if value not in ("app", "resource"):
        sink.add("apptype", f"must be app or resource, not {show(value)}")
        return AppKind.APP
    return AppKind(value)


def _build(value: object, sink: ProblemSink) -> BuildSpec | None:
    if value is None:
        return None
    checked = mapping(value, "build", sink)
    if checked is None:
        return None
    if checked.get("base") is None:
        sink.add("build.base", "no base in section build")
        return None
    base = string(checked["base"], "build.base", sink, non_empty=True)
    raw_script = checked.get("script")
    script = () if raw_script is None else string_list(raw_script, "build.script", sink)
    if base is None or script is None:
        return None
    return BuildSpec(base, script)


def _use_services(value: object, sink: ProblemSink) -> Mapping[str, tuple[str, ...]]:
    result: dict[str, tuple[str, ...]] = {}
    checked = {} if value is None else mapping(value, "use_services", sink) or {}
    for app, services in checked.items():
        where = f"use_services.{app}"
        problem = app_name_problem(app, path=where)
        names = string_list(services, where, sink)
        if problem is not None:
            sink.extend([problem])
        elif names is not None:
            for i, name in enumerate(names):
                if not is_valid_proc_name(name):
                    sink.add(f"{where}[{i}]", f"invalid service name {show(name)}: {NAME_RULE}")
            result[app] = names
    return MappingProxyType(result)


def _resource_use(value: object, where: str, sink: ProblemSink) -> ResourceUse | None:
    checked = mapping(value, where, sink)
    if checked is None:
        return None
    if checked.get("services") is None:
        sink.add(f"{where}.services", "invalid resource defination: services is required")
        return None
    services = string_list(checked["services"], f"{where}.services", sink, non_empty=True)
    context: dict[str, str | int] = {}
    for key, item in checked.items():
        if key == "services":
            continue
        if isinstance(item, str):
            context[key] = item
        else:
            # Template parameters are strings or integers (the validator's rule).
            number = integer(item, f"{where}.{key}", sink, rule="a string or an integer")
            if number is not None:
                context[key] = number
    if services is None:
        return None
    return ResourceUse(services, MappingProxyType(context))


def _use_resources(value: object, sink: ProblemSink) -> Mapping[str, ResourceUse]:
    result: dict[str, ResourceUse] = {}
    checked = {} if value is None else mapping(value, "use_resources", sink) or {}
    for resource, spec in checked.items():
        where = f"use_resources.{resource}"
        if not is_valid_proc_name(resource):
            sink.add(where, f"invalid resource name {show(resource)}: {NAME_RULE}")
        use = _resource_use(spec, where, sink)
        if use is not None:
            result[resource] = use
    return MappingProxyType(result)


def _notify(value: object, sink: ProblemSink) -> Mapping[str, str]:
    checked = {} if value is None else mapping(value, "notify", sink) or {}
    result: dict[str, str] = {}
    for key, item in checked.items():
        text = string(item, f"notify.{key}", sink)
        if text is not None:
            result[key] = text
    return MappingProxyType(result)


def _domains(domains: Sequence[str]) -> tuple[str, ...]:
    # A lone string is one domain, not a sequence of one-letter domains.
    if isinstance(domains, str):
        return (domains,)
    return tuple(domains)


def parse_lain_yaml(text: str, *, domains: Sequence[str] = ("lain.local",)) -> LainConfig:
    """Parse and validate a lain.yaml, applying every LAIN default.

    `domains` are the cluster domains (`/lain/config/domain` plus extra domains); web
    mountpoints are derived from them.

    Raises:
        LainYamlError: listing every problem found, for any input whatsoever.
    """
    data = load_yaml(text)
    if not isinstance(data, dict):
        raise LainYamlError([Problem(_ROOT, f"lain.yaml must be a mapping, not {describe(data)}")])
    sink = ProblemSink()
    appname = _appname(data, sink)
    giturl = data.get("giturl")
    if giturl is not None:
        giturl = string(giturl, "giturl", sink)
    apptype = _apptype(data.get("apptype"), sink)
    build = _build(data.get("build"), sink)
    procs = parse_procs(
        data,
        appname=appname or _PLACEHOLDER_APPNAME,
        domains=_domains(domains),
        template=apptype is AppKind.RESOURCE,
        sink=sink,
    )
    use_services = _use_services(data.get("use_services"), sink)
    use_resources = _use_resources(data.get("use_resources"), sink)
    notify = _notify(data.get("notify"), sink)
    sink.raise_if_any()
    assert appname is not None  # a missing or bad appname is a problem, raised above
    return LainConfig(
        appname=appname,
        apptype=apptype,
        giturl=giturl,
        build=build,
        procs=procs,
        use_services=use_services,
        use_resources=use_resources,
        notify=notify,
        text=text,
    )
