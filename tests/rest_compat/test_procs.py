"""COMPAT 3.10-3.12: procs, one proc (scale, resize, operations, delete), histories."""

from __future__ import annotations

from typing import Any

import pytest

from backends.errors import SchedulerConflict, SchedulerUnavailable
from tests.fakes.scheduler import FakeScheduler
from tests.rest_compat.helpers import (
    DOCS,
    NOT_JSON,
    V1,
    Rest,
    deploy,
    deployed_hello,
    foo_obj,
    publish,
    register,
    until,
    web_obj,
)

NOT_DEPLOYED = "app with appname hello has not been deployd\n"
SCHEDULED = "    status_code: 202\n    message: PodGroupSpec will be patched and rescheduled."
DELETED = "    status_code: 202\n    message: PodGroupSpec will be deleted from the orc engine."
WEB = "/api/v1/apps/hello/procs/web/"
FOO = "/api/v1/apps/hello/procs/foo/"


class AnyInt:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, int) and not isinstance(other, bool)

    def __hash__(self) -> int:
        return 0


@pytest.fixture
async def hello(rest: Rest) -> None:
    await deployed_hello(rest)


async def _undeploy_foo(rest: Rest) -> None:
    assert (await rest.request("DELETE", FOO)).status_code == 202


class TestListProcs:
    async def test_not_deployed_404(self, rest: Rest) -> None:
        await register(rest)
        await rest.expect(
            "GET",
            "/api/v1/apps/hello/procs/",
            status=404,
            key="procs",
            msg=NOT_DEPLOYED,
            url="/v1/apps/",
        )

    @pytest.mark.usefixtures("hello")
    async def test_200(self, rest: Rest) -> None:
        await rest.expect(
            "GET",
            "/api/v1/apps/hello/procs/",
            status=200,
            key="procs",
            url="/v1/apps/hello/procs/",
            obj=[web_obj(), foo_obj()],
        )


class TestDeployProc:
    @pytest.mark.usefixtures("hello")
    @pytest.mark.parametrize("body", [NOT_JSON, {"name": "foo"}, {"procname": 1}])
    async def test_bad_body_400(self, rest: Rest, body: object) -> None:
        await rest.expect(
            "POST",
            "/api/v1/apps/hello/procs/",
            body,
            status=400,
            key="proc",
            msg="invalid request: should be json body with procname(string)",
            url=DOCS,
        )

    async def test_not_deployed_404(self, rest: Rest) -> None:
        await register(rest)
        await rest.expect(
            "POST",
            "/api/v1/apps/hello/procs/",
            {"procname": "foo"},
            status=404,
            key="proc",
            msg=NOT_DEPLOYED,
            url="/v1/apps/",
        )

    @pytest.mark.usefixtures("hello")
    async def test_no_such_proc_400(self, rest: Rest) -> None:
        await rest.expect(
            "POST",
            "/api/v1/apps/hello/procs/",
            {"procname": "nope"},
            status=400,
            key="proc",
            msg="no such proc nope in app hello",
            url="/v1/apps/hello/procs/",
        )

    @pytest.mark.usefixtures("hello")
    async def test_running_409(self, rest: Rest) -> None:
        await rest.expect(
            "POST",
            "/api/v1/apps/hello/procs/",
            {"procname": "web"},
            status=409,
            key="proc",
            msg="proc with procname web already exists\n",
            url="/v1/apps/hello/procs/web/",
            obj=web_obj(),
        )

    @pytest.mark.usefixtures("hello")
    async def test_deploys_the_missing_proc_201(
        self, rest: Rest, fake_scheduler: FakeScheduler
    ) -> None:
        await _undeploy_foo(rest)
        assert "hello.worker.foo" not in fake_scheduler.jobs
        await rest.expect(
            "POST",
            "/api/v1/apps/hello/procs/",
            {"procname": "foo"},
            status=201,
            key="proc",
            msg="proc deploy result:\n        status_code: 202\n"
            "    message: PodGroupSpec added into the orc engine.\n",
            url="/v1/apps/hello/procs/foo/",
            obj=foo_obj(),
        )
        assert fake_scheduler.jobs["hello.worker.foo"].num_instances == 2

    @pytest.mark.usefixtures("hello")
    async def test_the_missing_proc_comes_back_with_the_lain_yaml_values(
        self, rest: Rest, fake_scheduler: FakeScheduler
    ) -> None:
        # LAIN recreated a deleted pod group from the current lain.yaml (COMPAT 4.7): what the
        # proc was scaled and resized to before its deletion is gone with it.
        assert (await rest.request("PATCH", FOO, {"num_instances": 5})).status_code == 202
        resized = await rest.request("PATCH", FOO, {"cpu": 2, "memory": "1g"})
        assert resized.status_code == 202
        await _undeploy_foo(rest)
        created = await rest.request("POST", "/api/v1/apps/hello/procs/", {"procname": "foo"})
        assert created.status_code == 201, created.text
        assert created.json()["proc"] == foo_obj()
        job = fake_scheduler.jobs["hello.worker.foo"]
        assert (job.num_instances, job.cpu, job.memory_bytes) == (2, 0, 32 * 1024**2)

    @pytest.mark.usefixtures("hello")
    async def test_a_proc_undeployed_then_updated_comes_back_with_the_lain_yaml_values(
        self, rest: Rest, fake_scheduler: FakeScheduler
    ) -> None:
        assert (await rest.request("PATCH", FOO, {"num_instances": 5})).status_code == 202
        await _undeploy_foo(rest)
        updated = await rest.request("PUT", "/api/v1/apps/hello/", {"meta_version": V1})
        assert updated.status_code == 202, updated.text
        assert (await rest.request("GET", FOO)).json()["proc"] == foo_obj()
        assert fake_scheduler.jobs["hello.worker.foo"].num_instances == 2

    async def test_portal_500(self, rest: Rest) -> None:
        await register(rest, "echo")
        echo = "appname: echo\nservice.echo:\n  cmd: ./echo\n  portal:\n    cmd: ./proxy\n"
        await publish(rest, "echo", V1, echo)
        await deploy(rest, "echo")
        await rest.expect(
            "POST",
            "/api/v1/apps/echo/procs/",
            {"procname": "portal-echo"},
            status=500,
            key="proc",
            msg="proc deploy result:\n        status_code: 400\n    message: portal-echo is a "
            "portal: it runs per client app and is managed through them\n",
            url="/v1/apps/echo/procs/portal-echo/",
        )


class TestGetProc:
    async def test_not_deployed_404(self, rest: Rest) -> None:
        await register(rest)
        await rest.expect("GET", WEB, status=404, key="proc", msg=NOT_DEPLOYED, url="/v1/apps/")

    async def test_default_image_of_an_upper_case_app_is_a_valid_docker_reference(
        self, rest: Rest, fake_scheduler: FakeScheduler
    ) -> None:
        # LAIN allows upper-case app names; a Docker repository name is lower-case.
        await register(rest, "HelloApp")
        await publish(rest, "HelloApp", V1, "appname: HelloApp\nweb:\n  cmd: hello\n")
        await deploy(rest, "HelloApp")
        image = f"registry.lain.local/helloapp:release-{V1}"
        web = (await rest.request("GET", "/api/v1/apps/HelloApp/procs/web/")).json()["proc"]
        assert web["image"] == image
        assert fake_scheduler.jobs["HelloApp.web.web"].image == image

    @pytest.mark.usefixtures("hello")
    async def test_no_such_proc_404(self, rest: Rest) -> None:
        await rest.expect(
            "GET",
            "/api/v1/apps/hello/procs/nope/",
            status=404,
            key="proc",
            msg="no such proc nope in app hello",
            url="/v1/apps/hello/procs/",
        )

    @pytest.mark.usefixtures("hello")
    async def test_200_with_status(self, rest: Rest) -> None:
        await rest.expect(
            "GET", WEB, status=200, key="proc", url="/v1/apps/hello/procs/web/", obj=web_obj()
        )

    @pytest.mark.usefixtures("hello")
    async def test_200_not_deployed_without_status(self, rest: Rest) -> None:
        await _undeploy_foo(rest)
        await rest.expect(
            "GET",
            FOO,
            status=200,
            key="proc",
            msg="proc foo exists but not deployed",
            url="/v1/apps/hello/procs/foo/",
            obj=foo_obj(status=False),
        )


@pytest.mark.usefixtures("hello")
class TestScaleAndResize:
    @pytest.mark.parametrize("body", [NOT_JSON, [1, 2]])
    async def test_not_an_object_400(self, rest: Rest, body: object) -> None:
        await rest.expect(
            "PATCH",
            WEB,
            body,
            status=400,
            key="proc",
            msg="invalid request: should be json body with num_instances(integer) "
            "or cpu(integer) or memory(str)",
            url=DOCS,
        )

    @pytest.mark.parametrize(
        ("body", "msg"),
        [
            (
                {"num_instances": "x", "cpu": "y", "memory": "z"},
                "invalid parameter: num_instances (x) should be integer"
                "invalid parameter: cpu (y) should be integer"
                "invalid parameter: memory (z) humanfriendly.parse_size(memory) failed",
            ),
            ({"num_instances": True}, "invalid parameter: num_instances (True) should be integer"),
            ({"num_instances": 1.5}, "invalid parameter: num_instances (1.5) should be integer"),
            (
                {"memory": 64},
                "invalid parameter: memory (64) humanfriendly.parse_size(memory) failed",
            ),
            ({}, "missing parameters: num_instances OR cpu OR memory"),
            ({"replicas": 2}, "missing parameters: num_instances OR cpu OR memory"),
            (
                {"num_instances": 2, "cpu": 1, "memory": "64M"},
                "scale num_instances should be a separate operation",
            ),
            (
                {"num_instances": -1},
                "invalid parameter: num_instances (-1) numInstances must be between 0 and "
                "1000, got -1",
            ),
            # Canary options, validated as LAIN's CanaryProc and CanaryPolicyGroup did.
            ({"canary_proc": {"action": "go"}}, "invalid action: go\n"),
            ({"canary_proc": {}}, "invalid action: None\n"),
            (
                {"canary_proc": {"action": "deploy", "image_version": "1528874349-abc"}},
                "invalid image_version: 1528874349-abc\n",
            ),
            (
                {"canary_proc": {"action": "deploy", "image_version": V1}},
                "invalid secret_files: None\n",
            ),
            (
                {"canary_proc": {"action": "deploy", "image_version": V1, "secret_files": "x"}},
                "invalid secret_files: x\n",
            ),
            ({"canary_proc": "deploy"}, "invalid canary_proc: deploy\n"),
            (
                {"canary_policy_group": {"action": "deploy", "mountpoints": "/"}},
                "invalid mounpoints: /\n",
            ),
            (
                {"canary_policy_group": {"action": "deploy", "mountpoints": [], "rules": [1]}},
                "invalid rules: [1]\n",
            ),
            (
                {"cpu": "y", "canary_proc": {"action": "x"}, "canary_policy_group": {}},
                "invalid parameter: cpu (y) should be integerinvalid action: x\n"
                "invalid action: None\n",
            ),
            (
                {"num_instances": 2, "canary_proc": {"action": "undeploy"}},
                "scale num_instances should be a separate operation",
            ),
            # Sizes humanfriendly reads, below the floor: "0" and "1" refused alike.
            (
                {"memory": "0"},
                "invalid parameter: memory (0) memory: '0' is below the minimum memory of 4 MB",
            ),
            (
                {"memory": "1"},
                "invalid parameter: memory (1) memory: '1' is below the minimum memory of 4 MB",
            ),
        ],
    )
    async def test_invalid_400_before_anything_is_scheduled(
        self, rest: Rest, fake_scheduler: FakeScheduler, body: dict[str, Any], msg: str
    ) -> None:
        calls = list(fake_scheduler.calls)
        await rest.expect(
            "PATCH", WEB, body, status=400, key="proc", msg=msg, url="/v1/apps/hello/procs/web/"
        )
        assert [c for c in fake_scheduler.calls if c[0] != "states"] == [
            c for c in calls if c[0] != "states"
        ]

    @pytest.mark.parametrize(
        ("body", "msg"),
        [
            (
                {"canary_proc": {"action": "deploy", "image_version": V1, "secret_files": []}},
                "canary procs are not supported by this console: it runs one release per proc",
            ),
            (
                {"canary_proc": {"action": "undeploy"}},
                "canary procs are not supported by this console: it runs one release per proc",
            ),
            (
                {"canary_policy_group": {"action": "deploy", "mountpoints": [], "rules": {}}},
                "canary policy groups are not supported by this console: there is no "
                "webrouter to hold A/B rules",
            ),
        ],
    )
    async def test_valid_canary_500_after_validation(
        self, rest: Rest, fake_scheduler: FakeScheduler, body: dict[str, Any], msg: str
    ) -> None:
        calls = [c for c in fake_scheduler.calls if c[0] != "states"]
        await rest.expect(
            "PATCH",
            WEB,
            body,
            status=500,
            key="proc",
            msg=f"    status_code: 501\n    message: {msg}",
            url="/v1/apps/hello/procs/web/",
            obj=web_obj(),
        )
        assert [c for c in fake_scheduler.calls if c[0] != "states"] == calls

    async def test_valid_canary_of_an_unknown_proc_404(self, rest: Rest) -> None:
        await rest.expect(
            "PATCH",
            "/api/v1/apps/hello/procs/nope/",
            {"canary_proc": {"action": "undeploy"}},
            status=404,
            key="proc",
            msg="no such proc nope in app hello",
            url="/v1/apps/hello/procs/",
        )

    async def test_no_such_proc_404(self, rest: Rest) -> None:
        await rest.expect(
            "PATCH",
            "/api/v1/apps/hello/procs/nope/",
            {"num_instances": 2},
            status=404,
            key="proc",
            msg="no such proc nope in app hello",
            url="/v1/apps/hello/procs/",
        )

    async def test_not_deployed_400(self, rest: Rest) -> None:
        await _undeploy_foo(rest)
        await rest.expect(
            "PATCH",
            FOO,
            {"num_instances": 3},
            status=400,
            key="proc",
            msg="proc foo exists but not deployed\nplease deploy it first\n",
            url="/v1/apps/hello/procs/foo/",
            obj=foo_obj(status=False),
        )

    async def test_scale_202(self, rest: Rest, fake_scheduler: FakeScheduler) -> None:
        await rest.expect(
            "PATCH",
            WEB,
            {"num_instances": 3},
            status=202,
            key="proc",
            msg=SCHEDULED,
            url="/v1/apps/hello/procs/web/",
            obj=web_obj(instances=3),
        )
        assert ("scale", "hello.web.web", "3") in fake_scheduler.calls

    async def test_resize_202_memory_humanised(self, rest: Rest) -> None:
        await rest.expect(
            "PATCH",
            WEB,
            {"cpu": 1, "memory": "1.5G"},
            status=202,
            key="proc",
            msg=SCHEDULED,
            url="/v1/apps/hello/procs/web/",
            obj=web_obj(cpu=1, memory="1.5 GB"),
        )

    async def test_scheduler_refusal_500_relayed(
        self, rest: Rest, fake_scheduler: FakeScheduler
    ) -> None:
        async def locked(job_id: str, num_instances: int) -> None:
            raise SchedulerConflict('Another operation "Scheduling" is progressing')

        fake_scheduler.scale = locked  # type: ignore[method-assign]
        # A refused (423) operation changes nothing, as in deployd, where a locked pod
        # group keeps its count and its LastError: the stored proc is as it was.
        expected = web_obj()
        await rest.expect(
            "PATCH",
            WEB,
            {"num_instances": 2},
            status=500,
            key="proc",
            msg='    status_code: 423\n    message: Another operation "Scheduling" is progressing',
            url="/v1/apps/hello/procs/web/",
            obj=expected,
        )


@pytest.mark.usefixtures("hello")
class TestOperations:
    @pytest.mark.parametrize("instance", [2, "2"])
    async def test_stop_one_instance_202(
        self, rest: Rest, fake_scheduler: FakeScheduler, instance: object
    ) -> None:
        await rest.expect(
            "PATCH",
            FOO,
            {"operation": "stop", "instance": instance},
            status=202,
            key="proc",
            msg=SCHEDULED,
            url="/v1/apps/hello/procs/",
            obj=foo_obj(status=False),
        )
        assert fake_scheduler.stopped["hello.worker.foo"] == {2}
        pods = (await rest.request("GET", FOO)).json()["proc"]["pods"]
        assert [pod["status"] for pod in pods] == ["True", "False"]

    async def test_restart_all_202(self, rest: Rest, fake_scheduler: FakeScheduler) -> None:
        await rest.expect(
            "PATCH",
            FOO,
            {"operation": "restart"},
            status=202,
            key="proc",
            msg=SCHEDULED,
            url="/v1/apps/hello/procs/",
            obj=foo_obj(status=False),
        )
        assert ("control", "hello.worker.foo", "restart", "None") in fake_scheduler.calls

    @pytest.mark.parametrize(
        ("body", "msg"),
        [
            (
                {"operation": "bogus"},
                "invalid parameter: operation (bogus) should be start, stop or restart",
            ),
            (
                {"operation": None},
                "invalid parameter: operation (None) should be start, stop or restart",
            ),
            (
                {"operation": "stop", "instance": "x"},
                "invalid parameter: instance (x) should be integer",
            ),
            (
                {"operation": "stop", "instance": -1},
                "invalid parameter: instance (-1) should be integer",
            ),
        ],
    )
    async def test_invalid_400(self, rest: Rest, body: dict[str, Any], msg: str) -> None:
        await rest.expect(
            "PATCH", FOO, body, status=400, key="proc", msg=msg, url="/v1/apps/hello/procs/foo/"
        )

    async def test_no_such_instance_404(self, rest: Rest) -> None:
        await rest.expect(
            "PATCH",
            FOO,
            {"operation": "restart", "instance": 3},
            status=404,
            key="proc",
            msg="no such proc foo instance 3, in app hello",
            url="/v1/apps/hello/procs/",
        )

    async def test_not_deployed_400(self, rest: Rest) -> None:
        await _undeploy_foo(rest)
        await rest.expect(
            "PATCH",
            FOO,
            {"operation": "start"},
            status=400,
            key="proc",
            msg="proc foo exists but not deployed\nplease deploy it first\n",
            url="/v1/apps/hello/procs/foo/",
            obj=foo_obj(status=False),
        )

    async def test_scheduler_refusal_500(self, rest: Rest, fake_scheduler: FakeScheduler) -> None:
        async def locked(*args: object) -> None:
            raise SchedulerConflict('Another operation "Scheduling" is progressing')

        fake_scheduler.control = locked  # type: ignore[method-assign]
        await rest.expect(
            "PATCH",
            FOO,
            {"operation": "stop"},
            status=500,
            key="proc",
            msg='    status_code: 423\n    message: Another operation "Scheduling" is progressing',
            url="/v1/apps/hello/procs/foo/",
            obj=foo_obj(status=False),
        )


@pytest.mark.usefixtures("hello")
class TestUndeployProc:
    async def test_202_then_400(self, rest: Rest, fake_scheduler: FakeScheduler) -> None:
        await rest.expect(
            "DELETE",
            FOO,
            status=202,
            key="proc",
            msg=DELETED,
            url="/v1/apps/hello/procs/",
            obj=foo_obj(status=False),
        )
        assert "hello.worker.foo" not in fake_scheduler.jobs
        await rest.expect(
            "DELETE",
            FOO,
            status=400,
            key="proc",
            msg="proc foo exists but not deployed\nplease deploy it first\n",
            url="/v1/apps/hello/procs/foo/",
            obj=foo_obj(status=False),
        )

    async def test_no_such_proc_404(self, rest: Rest) -> None:
        await rest.expect(
            "DELETE",
            "/api/v1/apps/hello/procs/nope/",
            status=404,
            key="proc",
            msg="no such proc nope in app hello",
            url="/v1/apps/hello/procs/",
        )

    async def test_scheduler_failure_500(self, rest: Rest, fake_scheduler: FakeScheduler) -> None:
        async def unreachable(job_id: str) -> None:
            raise SchedulerUnavailable("node1 does not answer")

        fake_scheduler.remove = unreachable  # type: ignore[method-assign]
        await rest.expect(
            "DELETE",
            FOO,
            status=500,
            key="proc",
            msg="    status_code: 500\n    message: node1 does not answer",
            url="/v1/apps/hello/procs/foo/",
            obj=foo_obj(status=False),
        )


class TestHistories:
    async def test_not_deployed_404(self, rest: Rest) -> None:
        await register(rest)
        await rest.expect(
            "GET",
            "/api/v1/apps/hello/procs/web/instance/1/histories/",
            status=404,
            key="proc",
            msg=NOT_DEPLOYED,
            url="/v1/apps/",
        )

    @pytest.mark.usefixtures("hello")
    async def test_changes_newest_first(self, rest: Rest) -> None:
        for operation in ("stop", "start"):
            body = {"operation": operation, "instance": 1}
            assert (await rest.request("PATCH", WEB, body)).status_code == 202
        path = "/api/v1/apps/hello/procs/web/instance/1/histories/"

        async def three_changes() -> bool:
            reply = (await rest.request("GET", path)).json()
            return len(reply["proc"]["StatusHistory"]) == 3

        await until(three_changes, within=10)
        image = f"hello:release-{V1}"
        await rest.expect(
            "GET",
            path,
            status=200,
            key="proc",
            url="/v1/apps/hello/procs/web/instance/1/histories/",
            obj={
                "Name": "hello.web.web",
                "Instance": "1",
                "StatusHistory": [
                    {"status": s, "action": s, "time": AnyInt(), "image": image, "node": "fake"}
                    for s in ("start", "stop", "start")
                ],
            },
        )

    @pytest.mark.usefixtures("hello")
    async def test_unknown_instance_has_no_changes(self, rest: Rest) -> None:
        await rest.expect(
            "GET",
            "/api/v1/apps/hello/procs/web/instance/9/histories/",
            status=200,
            key="proc",
            url="/v1/apps/hello/procs/web/instance/9/histories/",
            obj={"Name": "hello.web.web", "Instance": "9", "StatusHistory": []},
        )

    @pytest.mark.usefixtures("hello")
    async def test_no_such_proc_200_empty(self, rest: Rest) -> None:
        await rest.expect(
            "GET",
            "/api/v1/apps/hello/procs/nope/instance/1/histories/",
            status=200,
            key="proc",
            msg="proc nope do not exists",
            url="/v1/apps/hello/procs/nope/instance/1/histories/",
            obj=[],
        )

    @pytest.mark.usefixtures("hello")
    async def test_instance_not_a_number_400(self, rest: Rest) -> None:
        # LAIN crashed on int(); this is the 400 its code had for it.
        await rest.expect(
            "GET",
            "/api/v1/apps/hello/procs/web/instance/one/histories/",
            status=400,
            key="proc history",
            msg="invalid request: should be json body with procname(detail string) instance(int)",
            url=DOCS,
        )
