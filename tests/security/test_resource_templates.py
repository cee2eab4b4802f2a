"""A resource template that fails to render is the client's INVALID / 400, never a 500
(issue 12): it names the resource, the field and the line, and sizes are capped."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.releases import V1
from tests.security.served import fake_console

GRAPHQL_DEPLOY = """mutation($name: String!) {
  deployApp(input: {name: $name}) { errors { code field message } }
}"""

# The bad expression is on line 2 of the cmd's template.
TEMPLATE = """\
appname: cache
apptype: resource
service.cache:
  cmd: |
    cache-server --size 1
    {expression}
  port: 3333
  portal:
    cmd: ./proxy
"""

CLIENT = """\
appname: {name}
worker:
  cmd: ./client
use_resources:
  cache:
    services:
      - cache
"""

EXPRESSIONS = [
    ("{{ range(10**6)|list|length }}", "range of 1000000 items"),
    ("{{ 10**5000 }}", "10 ** 5000"),
    ("{% include 'secrets.yaml' %}", "no loader"),
    ("{{ 'x' * 10**9 }}", "a sequence repeated 1000000000 times"),
    ("{{ 'x'|center(10**9) }}", "a width of 1000000000"),
    ("{{ '{:>999999999}'.format('x') }}", "a format width"),
    ("{% for i in range(9999) %}{% for j in range(9999) %}{% endfor %}{% endfor %}", "looping"),
]


async def _publish(client: httpx.AsyncClient, name: str, lain_yaml: str) -> None:
    assert (await client.post("/api/v1/repos/", json={"appname": name})).status_code == 201
    body = {"meta_version": V1, "lain_yaml": lain_yaml}
    response = await client.post(f"/api/v1/repos/{name}/versions/", json=body)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(("expression", "reason"), EXPRESSIONS)
async def test_a_template_that_fails_is_invalid_at_both_doors(
    database_url: str, data_dir: Path, engine: object, expression: str, reason: str
) -> None:
    async with fake_console(database_url, data_dir) as client:
        await _publish(client, "cache", TEMPLATE.format(expression=expression))
        assert (await client.post("/api/v1/apps/", json={"appname": "cache"})).status_code == 202
        expected = (
            "resource cache does not render for {client}:\n"
            "service.cache.cmd: template error at line 2: "
        )

        await _publish(client, "viagraphql", CLIENT.format(name="viagraphql"))
        response = await client.post(
            "/graphql", json={"query": GRAPHQL_DEPLOY, "variables": {"name": "viagraphql"}}
        )
        assert response.status_code == 200, response.text
        (error,) = response.json()["data"]["deployApp"]["errors"]
        assert error["code"] == "INVALID"
        assert error["message"].startswith(expected.format(client="viagraphql"))
        assert reason in error["message"]

        await _publish(client, "viarest", CLIENT.format(name="viarest"))
        response = await client.post("/api/v1/apps/", json={"appname": "viarest"})
        # LAIN's answer to a deploy its checks refuse (COMPAT: 406, "not acceptable").
        assert response.status_code == 406, response.text
        assert expected.format(client="viarest") in response.json()["msg"]
        assert reason in response.json()["msg"]
