from __future__ import annotations

import pytest

from lainyaml import LainYamlError, ProcType, parse_lain_yaml
from lainyaml.resources import render_resource_instance

TEMPLATE = """\
appname: redis
apptype: resource
service.redis:
  cmd: redis -p 3333
  port: 3333
  num_instances: "{{ num_instances|default(2)|int(2) }}"
  memory: "{{ memory|default('64M') }}"
  portal:
    cmd: ./proxy
"""


def test_render_fills_the_template_with_the_client_context() -> None:
    text = render_resource_instance(
        TEMPLATE, resource="redis", client="hello", context={"memory": "128M", "num_instances": 1}
    )
    config = parse_lain_yaml(text)
    assert config.appname == "resource.redis.hello"
    redis = config.proc("redis")
    assert redis is not None
    assert (redis.type, redis.num_instances, redis.memory) == (ProcType.WORKER, 1, "128M")
    assert redis.dns_search == ("hello.redis.resource.lain",)
    assert config.proc("portal-redis") is not None


def test_render_uses_template_defaults_and_drops_apptype() -> None:
    text = render_resource_instance(TEMPLATE, resource="redis", client="c", context={})
    assert "apptype" not in text
    redis = parse_lain_yaml(text).proc("redis")
    assert redis is not None
    assert (redis.num_instances, redis.memory) == (2, "64M")


def test_render_refuses_unsafe_templates_with_the_path() -> None:
    template = "appname: r\nweb:\n  cmd: \"{{ ''.__class__.__mro__ }}\"\n"
    with pytest.raises(LainYamlError) as raised:
        render_resource_instance(template, resource="r", client="c", context={})
    assert raised.value.problems[0].path == "web.cmd"
    assert "unsafe" in raised.value.problems[0].message


def test_render_reports_template_syntax_errors() -> None:
    with pytest.raises(LainYamlError, match="template error"):
        render_resource_instance(
            "appname: r\nworker:\n  cmd: '{{ oops'\n", resource="r", client="c", context={}
        )
