"""Our audit entries under the operation names and messages LAIN's oplog had (COMPAT 3.15).

One audit store answers both doors: GraphQL's `auditLog` shows each entry as it was recorded,
and `/v1/oplogs/<app>/` shows it as LAIN wrote the same operation. The messages read here are
the ones `resolvers/procs.py` records (`<proc> num_instances=<n>`, `<proc> cpu=<c> memory=<m>`,
`<proc> instance=<n> of <job>`, `<proc> all instances`, `<proc>`); an entry that matches no
rule, or an operation LAIN did not have (PUBLISH, RECONCILE), keeps our own name and message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from resolvers.core.audit import AuditView
from resolvers.core.units import InvalidSize, parse_size

__all__ = ["OplogEntry", "container_name", "oplog_entry"]


@dataclass(frozen=True, slots=True)
class OplogEntry:
    op: str
    message: str
    app_version: str


def container_name(job_id: str, number: int) -> str:
    """deployd's docker name, /<pod group>.v<spec version>-i<instance>-d<drift count>; we
    count neither spec versions nor drifts (instances never move), hence v1 and d0."""
    return f"/{job_id}.v1-i{number}-d0"


_PROC = r"(?P<proc>[^ ]+)"
_SCALE = re.compile(rf"{_PROC} num_instances=(?P<n>-?\d+)")
_RESIZE = re.compile(rf"{_PROC} cpu=(?P<cpu>None|-?\d+) memory=(?P<memory>.+)")
_ONE_INSTANCE = re.compile(rf"{_PROC} instance=(?P<n>\d+) of (?P<job>[^ ]+)")
_ALL_INSTANCES = re.compile(rf"{_PROC} all instances")
_ONLY_PROC = re.compile(_PROC)


def _scale(found: re.Match[str]) -> str:
    return f"proc {found['proc']} scaled with instance {found['n']}"


def _resize(found: re.Match[str]) -> str | None:
    # LAIN logged the memory in bytes, as humanfriendly parsed it, and None when not given.
    memory = found["memory"]
    if memory != "None":
        try:
            memory = str(parse_size(memory))
        except InvalidSize:
            return None
    return f"proc {found['proc']} scaled with memory {memory}, cpu {found['cpu']}"


def _operation(verb: str) -> Callable[[AuditView], str | None]:
    def message(entry: AuditView) -> str | None:
        if found := _ONE_INSTANCE.fullmatch(entry.message):
            return f"{verb} container {container_name(found['job'], int(found['n']))}"
        if found := _ALL_INSTANCES.fullmatch(entry.message):
            return f"{verb} proc {found['proc']}"
        return None

    return message


def _matching(
    pattern: re.Pattern[str], text: Callable[[re.Match[str]], str | None]
) -> Callable[[AuditView], str | None]:
    def message(entry: AuditView) -> str | None:
        found = pattern.fullmatch(entry.message)
        return text(found) if found is not None else None

    return message


# Our operation -> LAIN's op and how its message is written; None: the entry stays ours.
_PROC_OPERATIONS: dict[str, tuple[str, Callable[[AuditView], str | None]]] = {
    "SCALE": ("SCALE", _matching(_SCALE, _scale)),
    "RESIZE": ("SCALE", _matching(_RESIZE, _resize)),
    "START": ("START", _operation("start")),
    "STOP": ("STOP", _operation("stop")),
    "RESTART": ("RESTART", _operation("restart")),
    "UNDEPLOY_PROC": ("DELETE", _matching(_ONLY_PROC, lambda m: f"delete proc {m['proc']}")),
    # LAIN's code meant this line ("proc %s depolyd") but crashed formatting it.
    "DEPLOY_PROC": ("DEPLOY", _matching(_ONLY_PROC, lambda m: f"proc {m['proc']} depolyd")),
}
# Whole-app operations: LAIN wrote no message, and the version only for deploys and updates.
_APP_OPERATIONS = {"REPOSIT": False, "DEPLOY": True, "UPDATE": True, "DELETE": False}


def oplog_entry(entry: AuditView) -> OplogEntry:
    """`entry` as LAIN's oplog row of the same operation."""
    if entry.operation in _APP_OPERATIONS:
        version = entry.meta_version if _APP_OPERATIONS[entry.operation] else ""
        return OplogEntry(entry.operation, "", version)
    rule = _PROC_OPERATIONS.get(entry.operation)
    message = rule[1](entry) if rule is not None else None
    if rule is None or message is None:
        return OplogEntry(entry.operation, entry.message, entry.meta_version)
    return OplogEntry(rule[0], message, "")
