"""A page of apps carries its procs and running state (resolvers.lain.overview.app_page): every
field below `apps` must answer exactly as when the app is reached one by one (`app(name:)`,
through the loaders), also when the scheduler cannot be read."""

from __future__ import annotations

from typing import Any

from tests.fakes.scheduler import FakeScheduler
from tests.releases import V1, two_proc_yaml
from tests.schema.conftest import GraphQLClient
from tests.schema.test_mutations import DEPLOY, PUBLISH, REGISTER

_APP_FIELDS = """
  name status metaVersion deployError health
  procs {
    name type numInstances deployed lastError runningReleases rollout health
    instances { number status healthy port release }
  }
  portals { name }
"""
_PAGE = f"{{ apps {{ nodes {{ {_APP_FIELDS} }} }} }}"
_ONE = f'{{ app(name: "hello") {{ {_APP_FIELDS} }} }}'
_VIEWER = f"{{ viewer {{ apps {{ nodes {{ {_APP_FIELDS} }} }} }} }}"


async def _deployed(gql: GraphQLClient) -> None:
    await gql(REGISTER, name="hello")
    await gql(PUBLISH, app="hello", v=V1, yaml=two_proc_yaml())
    await gql(DEPLOY, name="hello")


def _errors_by_path(body: dict[str, Any], prefix: int) -> list[tuple[tuple[object, ...], str]]:
    """(path below the app, code) of each error: the app sits at another depth per query."""
    found = [(tuple(e["path"][prefix:]), e["extensions"]["code"]) for e in body.get("errors") or []]
    return sorted(found, key=repr)


async def test_app_page_answers_as_one_app_does(gql: GraphQLClient) -> None:
    await _deployed(gql)
    page = await gql(_PAGE)
    one = await gql(_ONE)
    assert "errors" not in page
    assert "errors" not in one
    (listed,) = page["data"]["apps"]["nodes"]
    assert listed == one["data"]["app"]
    assert [p["name"] for p in listed["procs"]] == ["web", "jobs"]  # lain.yaml order
    assert listed["health"] == "HEALTHY"
    assert [len(p["instances"]) for p in listed["procs"]] == [1, 2]
    (via_viewer,) = (await gql(_VIEWER))["data"]["viewer"]["apps"]["nodes"]
    assert via_viewer == listed


async def test_app_page_with_scheduler_down_answers_as_one_app_does(
    gql: GraphQLClient, fake_scheduler: FakeScheduler
) -> None:
    await _deployed(gql)
    fake_scheduler.down = True
    page = await gql(_PAGE)
    one = await gql(_ONE)
    # The stored app still reads; what needs the scheduler is null with its error.
    (listed,) = page["data"]["apps"]["nodes"]
    assert listed == one["data"]["app"]
    assert listed["health"] is None
    assert [p["instances"] for p in listed["procs"]] == [None, None]
    assert listed["deployError"] == ""  # the last operation's: none failed
    errors = _errors_by_path(page, prefix=3)  # apps, nodes, 0
    assert errors == _errors_by_path(one, prefix=1)  # app
    assert errors
    assert {code for _, code in errors} == {"BACKEND_UNAVAILABLE"}
    assert ("health",) in {path for path, _ in errors}
    assert ("procs", 0, "instances") in {path for path, _ in errors}


async def test_app_page_of_an_app_with_nothing_running_needs_no_scheduler(
    gql: GraphQLClient, fake_scheduler: FakeScheduler
) -> None:
    await _deployed(gql)
    undeploy = (
        'mutation($p: String!) { undeployProc(input: {app: "hello", proc: $p}) '
        "{ errors { code } } }"
    )
    for proc in ("web", "jobs"):
        assert (await gql(undeploy, p=proc))["data"]["undeployProc"]["errors"] == []
    fake_scheduler.down = True
    page = await gql(_PAGE)
    one = await gql(_ONE)
    assert "errors" not in page
    assert "errors" not in one
    assert page["data"]["apps"]["nodes"] == [one["data"]["app"]]
    assert one["data"]["app"]["health"] == "STOPPED"
