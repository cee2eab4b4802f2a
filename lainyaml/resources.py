"""Rendering a resource template for one client (COMPAT.md 4.2 and 5.5). Pure, no I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from lainyaml.errors import LainYamlError, Problem
from lainyaml.naming import resource_instance_name
from lainyaml.templates import TemplateFailure, render_template
from lainyaml.yamlload import load_yaml

__all__ = ["render_resource_instance"]

_INTEGER = re.compile(r"-?[0-9]+")


def _render(value: Any, context: Mapping[str, object], path: str, problems: list[Problem]) -> Any:
    if isinstance(value, dict):
        return {
            k: _render(v, context, f"{path}.{k}" if path else str(k), problems)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_render(v, context, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    if not isinstance(value, str) or ("{{" not in value and "{%" not in value):
        return value
    try:
        rendered = render_template(value, context)
    except TemplateFailure as failure:
        problems.append(Problem(path, failure.describe()))
        return value
    # LAIN turns every rendered value into an int when it can (num_instances: "{{ n }}").
    return int(rendered) if _INTEGER.fullmatch(rendered.strip()) else rendered


def render_resource_instance(
    template: str, *, resource: str, client: str, context: Mapping[str, object]
) -> str:
    """The lain.yaml of `resource.<resource>.<client>`: every scalar of the resource's
    template rendered with the client's `use_resources` parameters, `appname` replaced and
    `apptype` removed. The result still has to pass `parse_lain_yaml`.

    Raises:
        LainYamlError: the template does not load or does not render.
    """
    data = load_yaml(template)
    if not isinstance(data, dict):
        raise LainYamlError([Problem("<root>", "a resource template must be a mapping")])
    problems: list[Problem] = []
    rendered = _render(data, context, "", problems)
    if problems:
        raise LainYamlError(problems)
    rendered["appname"] = resource_instance_name(resource, client)
    rendered.pop("apptype", None)
    text: str = yaml.safe_dump(rendered, sort_keys=False, allow_unicode=True)  # no stream: a str
    return text
