from __future__ import annotations

from tests.fakes.scheduler import FakeScheduler
from tests.releases import V1, two_proc_yaml
from tests.schema.conftest import GraphQLClient
from tests.schema.test_mutations import PUBLISH, REGISTER

DEPLOY = """mutation($key: String, $name: String!) {
  deployApp(input: {name: $name, idempotencyKey: $key}) {
    app { name status metaVersion } errors { code field message }
  }
}"""


async def _ready(gql: GraphQLClient) -> None:
    await gql(REGISTER, name="hello")
    await gql(PUBLISH, app="hello", v=V1, yaml=two_proc_yaml())


async def test_a_retried_deploy_gets_the_first_answer_and_deploys_once(
    gql: GraphQLClient, fake_scheduler: FakeScheduler
) -> None:
    await _ready(gql)
    first = await gql(DEPLOY, key="k-1", name="hello")
    again = await gql(DEPLOY, key="k-1", name="hello")
    assert first["data"]["deployApp"]["errors"] == []
    assert again == first
    applies = [c for c in fake_scheduler.calls if c[0] == "apply"]
    assert len(applies) == 2  # two procs, applied once each


async def test_without_a_key_a_second_deploy_is_a_conflict(gql: GraphQLClient) -> None:
    await _ready(gql)
    await gql(DEPLOY, key=None, name="hello")
    second = await gql(DEPLOY, key=None, name="hello")
    assert second["data"]["deployApp"]["errors"][0]["code"] == "CONFLICT"


async def test_a_failed_first_attempt_is_replayed_as_the_same_error(
    gql: GraphQLClient, fake_scheduler: FakeScheduler
) -> None:
    await _ready(gql)
    fake_scheduler.down = True
    first = await gql(DEPLOY, key="k-2", name="hello")
    fake_scheduler.down = False
    again = await gql(DEPLOY, key="k-2", name="hello")
    assert first["data"]["deployApp"]["errors"][0]["code"] == "BACKEND_UNAVAILABLE"
    assert again == first
    assert [c for c in fake_scheduler.calls if c[0] == "apply"] == []


async def test_a_key_reused_for_another_request_is_a_conflict(gql: GraphQLClient) -> None:
    await _ready(gql)
    await gql(REGISTER, name="other")
    await gql(DEPLOY, key="k-3", name="hello")
    reused = await gql(DEPLOY, key="k-3", name="other")
    (error,) = reused["data"]["deployApp"]["errors"]
    assert (error["code"], error["field"]) == ("CONFLICT", "idempotencyKey")


async def test_a_malformed_key_is_invalid(gql: GraphQLClient) -> None:
    await _ready(gql)
    result = await gql(DEPLOY, key="x" * 201, name="hello")
    (error,) = result["data"]["deployApp"]["errors"]
    assert (error["code"], error["field"]) == ("INVALID", "idempotencyKey")
