from __future__ import annotations

import pytest

from tests.fakes.scheduler import FakeScheduler
from tests.releases import V1, V2, two_proc_yaml
from tests.schema.conftest import GraphQLClient

REGISTER = """mutation($name: String!) {
  registerRepo(input: {name: $name}) { repo { name } errors { code field message } }
}"""
PUBLISH = """mutation($app: String!, $v: String!, $yaml: String!) {
  publishRelease(input: {app: $app, metaVersion: $v, lainYaml: $yaml}) {
    release { metaVersion procs { name type numInstances } }
    errors { code field message }
  }
}"""
DEPLOY = """mutation($name: String!) {
  deployApp(input: {name: $name}) {
    app { name status metaVersion procs { name numInstances instances { number status } } }
    errors { code field message }
  }
}"""


async def _deployed(gql: GraphQLClient) -> None:
    await gql(REGISTER, name="hello")
    await gql(PUBLISH, app="hello", v=V1, yaml=two_proc_yaml())
    result = await gql(DEPLOY, name="hello")
    assert result["data"]["deployApp"]["errors"] == []


async def test_register_publish_deploy(gql: GraphQLClient) -> None:
    assert (await gql(REGISTER, name="hello"))["data"]["registerRepo"] == {
        "repo": {"name": "hello"},
        "errors": [],
    }
    published = (await gql(PUBLISH, app="hello", v=V1, yaml=two_proc_yaml()))["data"]
    assert published["publishRelease"]["release"]["procs"] == [
        {"name": "web", "type": "WEB", "numInstances": 1},
        {"name": "jobs", "type": "WORKER", "numInstances": 2},
    ]
    app = (await gql(DEPLOY, name="hello"))["data"]["deployApp"]["app"]
    assert app["status"] == "DEPLOYED"
    assert app["metaVersion"] == V1
    assert app["procs"] == [
        {"name": "web", "numInstances": 1, "instances": [{"number": 1, "status": "RUNNING"}]},
        {
            "name": "jobs",
            "numInstances": 2,
            "instances": [{"number": 1, "status": "RUNNING"}, {"number": 2, "status": "RUNNING"}],
        },
    ]


async def test_scale_proc_as_written_in_the_issue(gql: GraphQLClient) -> None:
    await _deployed(gql)
    result = await gql(
        """mutation { scaleProc(input: {app: "hello", proc: "web", numInstances: 2})
        { proc { numInstances } errors { code message } } }"""
    )
    assert result == {"data": {"scaleProc": {"proc": {"numInstances": 2}, "errors": []}}}


@pytest.mark.parametrize(
    ("mutation", "code", "field"),
    [
        ('scaleProc(input: {app: "ghost", proc: "web", numInstances: 2})', "NOT_FOUND", "app"),
        ('scaleProc(input: {app: "hello", proc: "nope", numInstances: 2})', "NOT_FOUND", "proc"),
        (
            'scaleProc(input: {app: "hello", proc: "web", numInstances: -1})',
            "INVALID",
            "numInstances",
        ),
        ('resizeProc(input: {app: "hello", proc: "web", memory: "lots"})', "INVALID", "memory"),
        ('restartProc(input: {app: "hello", proc: "web", instance: 9})', "INVALID", "instance"),
        ('deployApp(input: {name: "hello"})', "CONFLICT", "name"),
        ('updateApp(input: {name: "hello", metaVersion: "1-abc"})', "NOT_FOUND", "metaVersion"),
        ('deployProc(input: {app: "hello", proc: "web"})', "CONFLICT", "proc"),
    ],
)
async def test_mutation_errors_are_data(
    gql: GraphQLClient, mutation: str, code: str, field: str
) -> None:
    await _deployed(gql)
    name = mutation.split("(")[0]
    subject = "app" if "App" in name else "proc"
    result = await gql(
        f"mutation {{ {mutation} {{ {subject} {{ name }} errors {{ code field }} }} }}"
    )
    assert result["data"][name] == {subject: None, "errors": [{"code": code, "field": field}]}


async def test_publish_without_procs_is_invalid_naming_the_rule(
    gql: GraphQLClient, fake_scheduler: FakeScheduler
) -> None:
    # Accepted, it would run nothing, and an update to it would remove every running proc.
    await _deployed(gql)
    result = await gql(PUBLISH, app="hello", v=V2, yaml="appname: hello\n")
    assert result["data"]["publishRelease"] == {
        "release": None,
        "errors": [
            {
                "code": "INVALID",
                "field": "lainYaml",
                "message": "invalid lain.yaml: a release must define at least one proc "
                "(web, worker, oneshot, service.<name> ...)",
            }
        ],
    }
    updated = await gql('mutation { updateApp(input: {name: "hello"}) { errors { code } } }')
    assert updated["data"]["updateApp"]["errors"] == []  # the newest is still V1: no-op
    assert sorted(fake_scheduler.jobs) == ["hello.web.web", "hello.worker.jobs"]


@pytest.mark.parametrize("memory", ["0", "1", "2m"])
async def test_resize_below_the_memory_floor_is_invalid_naming_it(
    gql: GraphQLClient, fake_scheduler: FakeScheduler, memory: str
) -> None:
    await _deployed(gql)
    calls = list(fake_scheduler.calls)
    result = await gql(
        'mutation($m: String!) { resizeProc(input: {app: "hello", proc: "web", memory: $m})'
        " { proc { name } errors { code field message } } }",
        m=memory,
    )
    assert result["data"]["resizeProc"] == {
        "proc": None,
        "errors": [
            {
                "code": "INVALID",
                "field": "memory",
                "message": f"memory: {memory!r} is below the minimum memory of 4 MB",
            }
        ],
    }
    assert [c for c in fake_scheduler.calls if c[0] != "states"] == [
        c for c in calls if c[0] != "states"
    ]


async def test_backend_down_is_backend_unavailable(
    gql: GraphQLClient, fake_scheduler: FakeScheduler
) -> None:
    await _deployed(gql)
    fake_scheduler.down = True
    result = await gql(
        """mutation { stopProc(input: {app: "hello", proc: "web"}) { errors { code message } } }"""
    )
    (error,) = result["data"]["stopProc"]["errors"]
    assert error["code"] == "BACKEND_UNAVAILABLE"
    assert "connection refused" in error["message"]


async def test_update_and_undeploy(gql: GraphQLClient, fake_scheduler: FakeScheduler) -> None:
    await _deployed(gql)
    await gql(PUBLISH, app="hello", v=V2, yaml=two_proc_yaml())
    updated = await gql(
        'mutation { updateApp(input: {name: "hello"}) { app { metaVersion } errors { code } } }'
    )
    assert updated["data"]["updateApp"] == {"app": {"metaVersion": V2}, "errors": []}
    gone = await gql(
        'mutation { undeployApp(input: {name: "hello"}) { app { status metaVersion } } }'
    )
    assert gone["data"]["undeployApp"]["app"] == {"status": "UNDEPLOYED", "metaVersion": None}
    assert fake_scheduler.jobs == {}
