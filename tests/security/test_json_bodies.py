"""A JSON body with a key given twice is refused, naming the key, at both doors (issue 12).

`json.loads` keeps the last value, so a filter or log reading the first would see another
request than the console acts on.
"""

from __future__ import annotations

from pathlib import Path

from tests.security.served import fake_console

REGISTER_TWICE = b'{"appname": "harmless", "appname": "other"}'


async def test_rest_refuses_a_repeated_key_and_registers_nothing(
    database_url: str, data_dir: Path, engine: object
) -> None:
    async with fake_console(database_url, data_dir) as client:
        response = await client.post("/api/v1/repos/", content=REGISTER_TWICE)
        assert response.status_code == 400
        assert response.json() == {
            "repos": None,  # the endpoint's key, as in its other refusals
            "msg": 'invalid request: duplicate key "appname" in the JSON body',
            "url": "/v1/docs/",
        }
        assert (await client.get("/api/v1/repos/")).json()["repos"] in (None, [])


async def test_rest_refuses_a_repeated_key_inside_a_nested_object(
    database_url: str, data_dir: Path, engine: object
) -> None:
    async with fake_console(database_url, data_dir) as client:
        body = b'{"appname": "hello", "extra": {"a": 1, "a": 2}}'
        response = await client.post("/api/v1/apps/", content=body)
        assert response.status_code == 400
        assert '"a"' in response.json()["msg"]


async def test_graphql_refuses_a_repeated_key(
    database_url: str, data_dir: Path, engine: object
) -> None:
    async with fake_console(database_url, data_dir) as client:
        twice = (
            b'{"query": "{ viewer { name } }", '
            b'"query": "mutation { registerRepo(input: {name: \\"x\\"}) { errors { code } } }"}'
        )
        response = await client.post(
            "/graphql", content=twice, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400
        assert 'duplicate key "query" in the JSON body' in response.text
        variables = b'{"query": "{ viewer { name } }", "variables": {"a": 1, "a": 2}}'
        response = await client.post(
            "/graphql", content=variables, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400
        assert 'duplicate key "a" in the JSON body' in response.text
        # One of each key is fine.
        response = await client.post("/graphql", json={"query": "{ viewer { name } }"})
        assert response.status_code == 200
