"""LAIN's naming rules: app and proc names, pod groups, resource instances, app domains."""

from __future__ import annotations

import re

from lainyaml.errors import LainYamlError, Problem

__all__ = [
    "NAME_RULE",
    "RESERVED_APP_NAMES",
    "app_domain",
    "app_name_problem",
    "is_valid_proc_name",
    "parse_resource_instance_name",
    "pod_group_name",
    "registration_name_problem",
    "resource_instance_name",
    "validate_app_name",
]

# The lain-sdk validator's name pattern: a letter, then letters/digits, with single dashes
# between alphanumeric runs. Proc names, service names and resource names use it too.
_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9]*(?:-[a-zA-Z0-9]+)*", re.ASCII)

# The parser refuses these as appnames: they are the first segment of derived names.
RESERVED_APP_NAMES = ("service", "resource", "portal")

_RESOURCE_PREFIX = "resource."
NAME_RULE = (
    "must start with a letter, then letters and digits, with single dashes between them "
    "(no dots, underscores or trailing dash)"
)


def _is_name(value: str) -> bool:
    return _NAME.fullmatch(value) is not None


def is_valid_proc_name(name: str) -> bool:
    """True if `name` follows the validator's pattern (also used for service names)."""
    return isinstance(name, str) and _is_name(name)


def pod_group_name(app: str, proctype: str, proc: str) -> str:
    """`<app>.<proctype>.<proc>`, e.g. `hello.worker.foo`; proctype may be a ProcType."""
    return f"{app}.{proctype}.{proc}"


def resource_instance_name(resource: str, client: str) -> str:
    """`resource.<resource>.<client>`, the app created for a client of a resource."""
    return f"{_RESOURCE_PREFIX}{resource}.{client}"


def parse_resource_instance_name(name: str) -> tuple[str, str] | None:
    """`(resource, client)` for `resource.<resource>.<client>`, or None for any other name.

    Both parts must be valid app names, so the split is unambiguous.
    """
    if not isinstance(name, str) or not name.startswith(_RESOURCE_PREFIX):
        return None
    parts = name[len(_RESOURCE_PREFIX) :].split(".")
    if len(parts) != 2 or not all(_is_name(p) for p in parts):
        return None
    return parts[0], parts[1]


def app_domain(appname: str) -> str:
    """The appname with its dot-segments reversed: `resource.redis.c` -> `c.redis.resource`."""
    return ".".join(reversed(appname.split(".")))


def app_name_problem(name: object, *, path: str = "appname") -> Problem | None:
    """Why `name` cannot be an app name, or None if it can.

    Accepted: the validator's pattern (`hello`, `echo-server`) and resource-instance names
    `resource.<resource>.<client>`. Refused: `service`, `resource`, `portal`.
    """
    if not isinstance(name, str):
        return Problem(path, f"appname must be a string, not {type(name).__name__}")
    if name in RESERVED_APP_NAMES:
        return Problem(
            path, f"invalid lain conf: appname {name} should not in {RESERVED_APP_NAMES}"
        )
    if _is_name(name) or parse_resource_instance_name(name) is not None:
        return None
    return Problem(path, f"invalid appname {name!r}: {NAME_RULE}")


def registration_name_problem(name: str, *, path: str = "name") -> Problem | None:
    """Why a user may not register `name`, or None if they may.

    On top of `app_name_problem`: the names the console derives itself are reserved, so that
    nobody can squat the instance that would hold another user's resource parameters. Pod
    group and portal job names (`<app>.<proctype>.<proc>`, `<service>.portal.<p>_<client>`)
    already break the name rule; resource instances are the one derived form it accepts.
    """
    problem = app_name_problem(name, path=path)
    if problem is not None:
        return problem
    if parse_resource_instance_name(name) is not None:
        return Problem(
            path,
            f"{name} is reserved: names of the form resource.<resource>.<client> are created "
            "by the console for resource instances and cannot be registered",
        )
    return None


def validate_app_name(name: str) -> None:
    """Check a name we register or deploy under.

    Raises:
        LainYamlError: with the single problem from `app_name_problem`.
    """
    problem = app_name_problem(name)
    if problem is not None:
        raise LainYamlError([problem])
