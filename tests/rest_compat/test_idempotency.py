"""`Idempotency-Key` on the REST door: a retried mutation gets the first reply, byte for byte."""

from __future__ import annotations

from tests.fakes.scheduler import FakeScheduler
from tests.releases import V1
from tests.rest_compat.helpers import HELLO_YAML, Rest, publish, register


async def test_a_retried_deploy_is_answered_with_the_first_reply(
    rest: Rest, fake_scheduler: FakeScheduler
) -> None:
    await register(rest)
    await publish(rest, "hello", V1, HELLO_YAML)
    key = {"Idempotency-Key": "deploy-hello-1"}
    first = await rest.request("POST", "/api/v1/apps/", {"appname": "hello"}, headers=key)
    applied = [c for c in fake_scheduler.calls if c[0] == "apply"]
    again = await rest.request("POST", "/api/v1/apps/", {"appname": "hello"}, headers=key)
    assert first.status_code == 202
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert [c for c in fake_scheduler.calls if c[0] == "apply"] == applied
    # Without the key, the same request is LAIN's 409: the app is deployed.
    plain = await rest.request("POST", "/api/v1/apps/", {"appname": "hello"})
    assert plain.status_code == 409


async def test_a_key_reused_for_another_request_is_409(rest: Rest) -> None:
    await register(rest)
    key = {"Idempotency-Key": "k"}
    await rest.request("POST", "/api/v1/repos/", {"appname": "one"}, headers=key)
    reused = await rest.request("POST", "/api/v1/repos/", {"appname": "two"}, headers=key)
    assert reused.status_code == 409
    assert reused.json() == {
        "repos": None,
        "msg": "this idempotency key was used for a different request\n",
        "url": "/v1/docs/",
    }
