"""LAIN's canary options of `PATCH …/procs/<p>/` (COMPAT 8.2): validated as the console did,
then refused, since this console runs one release per proc and has no webrouter for A/B
rules."""

from __future__ import annotations

import re
from typing import Any

from rest_compat import errors
from rest_compat.py2 import dumps, py2_str

__all__ = ["CANARY_KEYS", "canary_problems", "not_supported"]

CANARY_KEYS = ("canary_proc", "canary_policy_group")
_ACTIONS = ("deploy", "undeploy")
# lain-sdk's image version, `<10 digits>-<40 word chars>`; Python 2's `\d` and `\w` on a
# pattern without re.UNICODE were ASCII.
_IMAGE_VERSION = re.compile(r"\d{10}-\w{40}", re.ASCII)

_NOT_SUPPORTED = {
    "canary_proc": "canary procs are not supported by this console: it runs one release per proc",
    "canary_policy_group": "canary policy groups are not supported by this console: there "
    "is no webrouter to hold A/B rules",
}


def canary_problems(key: str, value: Any) -> str:
    """LAIN's message for an invalid `key` option (each ends with a newline), or ""."""
    if not isinstance(value, dict):
        # LAIN crashed reading a field of it; it names the option instead.
        return f"invalid {key}: {py2_str(value)}\n"
    action = value.get("action")
    if action not in _ACTIONS:
        return f"invalid action: {py2_str(action)}\n"
    if action != "deploy":
        return ""
    if key == "canary_proc":
        version = value.get("image_version")
        if not isinstance(version, str) or not _IMAGE_VERSION.fullmatch(version):
            return f"invalid image_version: {py2_str(version)}\n"
        if not isinstance(value.get("secret_files"), list):
            return f"invalid secret_files: {py2_str(value.get('secret_files'))}\n"
        return ""
    if not isinstance(value.get("mountpoints"), list):
        # "mounpoints": the console's typo, part of the wire format.
        return f"invalid mounpoints: {py2_str(value.get('mountpoints'))}\n"
    rules = value.get("rules")
    if not isinstance(rules, dict):
        # The webrouter checked the rules in LAIN; an A/B policy group is a JSON object.
        return f"invalid rules: {dumps(rules).decode('ascii')}\n"
    return ""


def not_supported(key: str) -> str:
    """What a valid canary request gets: deployd's relay format, as LAIN's 500 had it."""
    return errors.relay(501, _NOT_SUPPORTED[key])
