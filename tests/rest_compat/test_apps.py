"""COMPAT 3.8, 3.9 and 3.13: apps, one app, resource instances."""

from __future__ import annotations

from typing import Any

import pytest

from backends.errors import SchedulerUnavailable
from tests.fakes.scheduler import FakeScheduler
from tests.rest_compat.helpers import (
    DOCS,
    HELLO_YAML,
    NOT_JSON,
    UPDATETIME,
    V1,
    V2,
    Rest,
    RestWith,
    app_obj,
    assert_reply,
    deploy,
    deployed_hello,
    foo_obj,
    pod_obj,
    publish,
    register,
    repo_obj,
    web_obj,
)

ECHO_YAML = """\
appname: echo
service.echo:
  cmd: ./echo
  port: 1234
  portal:
    cmd: ./proxy
    port: 10000
"""

CLIENT_YAML = """\
appname: client
use_services:
  echo:
    - echo
worker:
  cmd: ./client
"""

REDIS_YAML = """\
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

NOT_DEPLOYED = "app with appname hello has not been deployd\n"


def _proc(app: str, name: str, proctype: str, **fields: Any) -> dict[str, Any]:
    """A proc of the small test apps, LAIN's defaults unless `fields` say otherwise."""
    base = {
        "procname": name,
        "proctype": proctype,
        "image": f"registry.lain.local/{app}:release-{V1}",
        "numinstances": 1,
        "cpu": 0,
        "memory": "32m",
        "persistentdirs": ["/lain/logs"],
        "dnssearchs": [f"{app}.lain"],
        "ports": [],
        "mountpoints": [],
        "httpsonly": True,
        "user": "",
        "workingdir": "",
        "entrypoint": None,
        "cmd": None,
        "envs": [],
        "logs": [],
        "pods": [],
        "depends": [],
        "lasterror": "",
        "url": f"/v1/apps/{app}/procs/{name}/",
    }
    return base | fields


def _echo_portal(*clients: str) -> dict[str, Any]:
    # A portal runs once per client app: lain.yaml values, and the pods of those runs.
    return _proc(
        "echo",
        "portal-echo",
        "portal",
        cmd=["./proxy"],
        ports=[{"portnumber": 10000, "porttype": "tcp"}],
        pods=[pod_obj(f"echo.portal.portal-echo_{client}", 1, 10000) for client in clients],
    )


def _echo_obj(*clients: str) -> dict[str, Any]:
    worker = _proc(
        "echo",
        "echo",
        "worker",
        memory="32 MB",
        cmd=["./echo"],
        ports=[{"portnumber": 1234, "porttype": "tcp"}],
        pods=[
            {
                "containerid": "echo.worker.echo-1",
                "containername": "/echo.worker.echo.v1-i1-d0",
                "containerip": "127.0.0.1",
                "containerport": 1234,
                "nodeip": "127.0.0.1",
                "status": "True",
                "uptime": "0001-01-01 00:00:00Z",
                "envs": [],
            }
        ],
    )
    return app_obj("echo", apptype="service", procs=[worker], portals=[_echo_portal(*clients)])


async def _deployed(rest: Rest, app: str, yaml: str) -> None:
    await register(rest, app)
    await publish(rest, app, V1, yaml)
    await deploy(rest, app)


class TestListApps:
    async def test_empty_then_full_objects(self, rest: Rest) -> None:
        await rest.expect("GET", "/api/v1/apps/", status=200, key="apps", url="/v1/apps/", obj=[])
        await register(rest, "registered-only")
        await deployed_hello(rest)
        await rest.expect(
            "GET", "/api/v1/apps/", status=200, key="apps", url="/v1/apps/", obj=[app_obj()]
        )

    @pytest.mark.parametrize(
        ("query", "apps"),
        [
            ("", ["echo", "hello"]),
            ("?apptype=service", ["echo"]),
            ("?apptype=app", ["hello"]),
            ("?foo=1", ["hello"]),  # any query string filters on "app" (COMPAT 9.13)
            ("?apptype=bogus", []),
        ],
    )
    async def test_apptype_filter(self, rest: Rest, query: str, apps: list[str]) -> None:
        await deployed_hello(rest)
        await _deployed(rest, "echo", ECHO_YAML)
        found = await rest.expect(
            "GET",
            f"/api/v1/apps/{query}",
            status=200,
            key="apps",
            url="/v1/apps/",
            obj=[{"echo": _echo_obj(), "hello": app_obj()}[name] for name in apps],
        )
        assert [app["appname"] for app in found] == apps

    async def test_used_services_are_embedded(self, rest: Rest) -> None:
        await _deployed(rest, "echo", ECHO_YAML)
        await _deployed(rest, "client", CLIENT_YAML)
        found = (await rest.request("GET", "/api/v1/apps/client/")).json()["app"]
        nested = _echo_obj("client") | {"useservices": [], "useresources": []}
        assert found["useservices"] == [
            {"servicename": "echo", "serviceprocs": ["portal-echo"], "service": nested}
        ]
        await rest.expect(
            "GET",
            "/api/v1/apps/echo/",
            status=200,
            key="app",
            url="/v1/apps/echo/",
            obj=_echo_obj("client"),
        )
        assert (await rest.request("DELETE", "/api/v1/apps/echo/")).status_code == 202
        found = (await rest.request("GET", "/api/v1/apps/client/")).json()["app"]
        # Not deployed: the portal's name is guessed and the service is empty.
        assert found["useservices"] == [
            {"servicename": "echo", "serviceprocs": ["portal-echo"], "service": {}}
        ]


class TestDeployApp:
    @pytest.mark.parametrize("body", [NOT_JSON, {}, {"appname": 1}, ["hello"]])
    async def test_bad_body_400_before_the_app_check(self, rest: Rest, body: object) -> None:
        await rest.expect(
            "POST",
            "/api/v1/apps/",
            body,
            status=400,
            key="app",
            msg="invalid request: should be json body with appname(string)",
            url=DOCS,
        )

    async def test_unknown_app_404(self, rest: Rest) -> None:
        await rest.expect(
            "POST",
            "/api/v1/apps/",
            {"appname": "nope"},
            status=404,
            key="app",
            msg="app with appname nope not exist, has not been reposited yet",
            url="/v1/repos/",
        )

    async def test_no_release_500_names_the_registry(self, rest_with: RestWith) -> None:
        """No release at all is what LAIN answered when the registry had no images; the
        registry in the message is the configured one."""
        async with rest_with(registry="hub.example.com") as rest:
            await register(rest)
            response = await rest.request("POST", "/api/v1/apps/", {"appname": "hello"})
        msg = (
            "error in getting images: no images here: "
            "http://hub.example.com/v2/hello/tags/list\n"
            "please check your App images then try to update your App\n"
        )
        assert_reply(response, status=500, key="app", msg=msg, url="/v1/apps/hello/")
        # The envelope in LAIN's key order (COMPAT 1.2), byte for byte.
        assert response.content == (
            b'{"msg": "error in getting images: no images here: '
            b"http://hub.example.com/v2/hello/tags/list\\nplease check your App images "
            b'then try to update your App\\n", "url": "/v1/apps/hello/", "app": null}'
        )

    async def test_time_zone_setting_reaches_every_job(
        self, rest_with: RestWith, fake_scheduler: FakeScheduler
    ) -> None:
        """TZ is what the console gives every instance, before the LAIN_* variables; a
        setting changes the zone (the default, LAIN's, is in test_local_backend)."""
        async with rest_with(timezone="Europe/Paris") as rest:
            await deployed_hello(rest)
        assert fake_scheduler.jobs["hello.web.web"].env == (
            ("ENV_A", "enva"),
            ("TZ", "Europe/Paris"),
            ("LAIN_APPNAME", "hello"),
            ("LAIN_APP_RELEASE_VERSION", V1),
            ("LAIN_PROCNAME", "web"),
            ("LAIN_DOMAIN", "lain.local"),
        )
        assert dict(fake_scheduler.jobs["hello.worker.foo"].env)["TZ"] == "Europe/Paris"

    @pytest.mark.parametrize("registered", [False, True])
    async def test_resource_not_deployed_406(self, rest: Rest, registered: bool) -> None:
        if registered:
            await register(rest, "redis")
        await register(rest, "rclient")
        await publish(rest, "rclient", V1, RCLIENT_YAML)
        await rest.expect(
            "POST",
            "/api/v1/apps/",
            {"appname": "rclient"},
            status=406,
            key="app",
            msg="request of deploy app rclient is not acceptable with error:\n"
            "Deploy app rclient results: Error: Resource redis DoesNotExist",
            url="/v1/apps/rclient/",
        )

    async def test_202_then_409(self, rest: Rest) -> None:
        await register(rest)
        await publish(rest, "hello", V1, HELLO_YAML)
        await rest.expect(
            "POST",
            "/api/v1/apps/",
            {"appname": "hello"},
            status=202,
            key="app",
            msg="deploy request of app hello has been accepted.",
            url="/v1/apps/hello/",
            obj=app_obj(),
        )
        await rest.expect(
            "POST",
            "/api/v1/apps/",
            {"appname": "hello"},
            status=409,
            key="app",
            msg="app with appname hello already exists\n",
            url="/v1/apps/hello/",
            obj=app_obj(),
        )

    async def test_refused_406_undoes_the_first_deploy(
        self, rest: Rest, fake_scheduler: FakeScheduler
    ) -> None:
        await register(rest)
        await publish(rest, "hello", V1, HELLO_YAML)
        fake_scheduler.fail_jobs.add("hello.worker.foo")
        await rest.expect(
            "POST",
            "/api/v1/apps/",
            {"appname": "hello"},
            status=406,
            key="app",
            msg="request of deploy app hello is not acceptable with error:\n"
            "Deploy app hello results: deploy of hello failed: hello.worker.foo: "
            "fake scheduler refuses hello.worker.foo",
            url="/v1/apps/hello/",
        )
        assert fake_scheduler.jobs == {}
        await rest.expect(
            "GET", "/api/v1/apps/hello/", status=404, key="app", msg=NOT_DEPLOYED, url="/v1/apps/"
        )


class TestGetApp:
    async def test_registered_only_404(self, rest: Rest) -> None:
        await register(rest)
        await rest.expect(
            "GET", "/api/v1/apps/hello/", status=404, key="app", msg=NOT_DEPLOYED, url="/v1/apps/"
        )

    async def test_200(self, rest: Rest) -> None:
        await deployed_hello(rest)
        await rest.expect(
            "GET",
            "/api/v1/apps/hello/",
            status=200,
            key="app",
            url="/v1/apps/hello/",
            obj=app_obj(),
        )

    async def test_backend_down_shows_lain_yaml_values(
        self, rest: Rest, fake_scheduler: FakeScheduler
    ) -> None:
        await deployed_hello(rest)
        fake_scheduler.down = True
        procs = [web_obj(status=False), foo_obj(status=False)]
        await rest.expect(
            "GET",
            "/api/v1/apps/hello/",
            status=200,
            key="app",
            url="/v1/apps/hello/",
            obj=app_obj(procs=procs),
        )


class TestUpdateApp:
    async def test_not_deployed_404(self, rest: Rest) -> None:
        await register(rest)
        await rest.expect(
            "PUT", "/api/v1/apps/hello/", status=404, key="app", msg=NOT_DEPLOYED, url="/v1/apps/"
        )

    @pytest.mark.parametrize(
        ("version", "shown"), [("meta-" + V2, "meta-" + V2), (123, "123"), ("nope", "nope")]
    )
    async def test_unknown_version_400_with_the_app(
        self, rest: Rest, version: object, shown: str
    ) -> None:
        await deployed_hello(rest)
        await publish(rest, "hello", V2, HELLO_YAML)
        await rest.expect(
            "PUT",
            "/api/v1/apps/hello/",
            {"meta_version": version},
            status=400,
            key="app",
            msg=f"no such meta_version {shown} for app hello\nplease check your images\n",
            url="/v1/apps/hello/",
            obj=app_obj(),
        )

    @pytest.mark.parametrize("body", [{"meta_version": V2}, NOT_JSON, ["not", "an", "object"]])
    async def test_202_to_the_given_or_newest(self, rest: Rest, body: object) -> None:
        await deployed_hello(rest)
        await publish(rest, "hello", V2, HELLO_YAML)
        await rest.expect(
            "PUT",
            "/api/v1/apps/hello/",
            body,
            status=202,
            key="app",
            msg="update request of app hello has been accepted.",
            url="/v1/apps/hello/",
            obj=app_obj(version=V2),
        )

    async def test_resource_not_deployed_406(self, rest: Rest) -> None:
        await deployed_hello(rest)
        uses = "use_resources:\n  redis:\n    services:\n      - redis\n"
        await publish(rest, "hello", V2, HELLO_YAML + uses)
        await rest.expect(
            "PUT",
            "/api/v1/apps/hello/",
            status=406,
            key="app",
            msg="request of update app hello is not acceptable with error:\n"
            "Updating app hello results: Error: Resource redis DoesNotExist",
            url="/v1/apps/hello/",
        )

    async def test_refused_406(self, rest: Rest, fake_scheduler: FakeScheduler) -> None:
        await deployed_hello(rest)
        await publish(rest, "hello", V2, HELLO_YAML)
        fake_scheduler.fail_jobs.add("hello.web.web")
        await rest.expect(
            "PUT",
            "/api/v1/apps/hello/",
            {"meta_version": V2},
            status=406,
            key="app",
            msg="request of update app hello is not acceptable with error:\n"
            "Updating app hello results: update of hello failed: hello.web.web: "
            "fake scheduler refuses hello.web.web",
            url="/v1/apps/hello/",
        )


class TestUndeployApp:
    async def test_not_deployed_404(self, rest: Rest) -> None:
        await register(rest)
        await rest.expect(
            "DELETE",
            "/api/v1/apps/hello/",
            status=404,
            key="app",
            msg=NOT_DEPLOYED,
            url="/v1/apps/",
        )

    async def test_202_reports_and_keeps_the_registration(
        self, rest: Rest, fake_scheduler: FakeScheduler
    ) -> None:
        await deployed_hello(rest)
        await rest.expect(
            "DELETE",
            "/api/v1/apps/hello/",
            status=202,
            key="app",
            # LAIN's results were dicts keyed by pod group: Python 2's order, as in COMPAT.
            msg="app remove results:\nremove successed results:\n"
            "    hello.worker.foo\n    status_code: 202\n"
            "    message: PodGroupSpec will be deleted from the orc engine.\n"
            "    hello.web.web\n    status_code: 202\n"
            "    message: PodGroupSpec will be deleted from the orc engine.\n"
            "remove missed results:\nremove failed results:\n",
            url="/v1/apps/",
            obj=repo_obj("hello"),
        )
        assert fake_scheduler.jobs == {}
        await rest.expect(
            "GET",
            "/api/v1/repos/hello/",
            status=200,
            key="repo",
            url="/v1/repos/hello/",
            obj=repo_obj("hello"),
        )

    async def test_incomplete_500(self, rest: Rest, fake_scheduler: FakeScheduler) -> None:
        await deployed_hello(rest)
        remove = fake_scheduler.remove

        async def stuck(job_id: str) -> None:
            if job_id == "hello.worker.foo":
                raise SchedulerUnavailable("node1 does not answer")
            await remove(job_id)

        fake_scheduler.remove = stuck  # type: ignore[method-assign]
        await rest.expect(
            "DELETE",
            "/api/v1/apps/hello/",
            status=500,
            key="app",
            msg="app remove results:\nremove successed results:\n"
            "    hello.web.web\n    status_code: 202\n"
            "    message: PodGroupSpec will be deleted from the orc engine.\n"
            "remove missed results:\nremove failed results:\n"
            "    hello.worker.foo\n    status_code: 500\n"
            "    message: undeploy of hello incomplete: hello.worker.foo: node1 does not answer\n",
            url="/v1/apps/hello/",
        )

    async def test_resource_403_with_the_app(self, rest: Rest) -> None:
        await _deployed(rest, "redis", REDIS_YAML)
        redis = _proc(
            "redis",
            "redis",
            "worker",
            numinstances="{{ num_instances|default(2)|int(2) }}",
            memory="{{ memory|default('64M') }}",
            cmd=["redis", "-p", "3333"],
            ports=[{"portnumber": 3333, "porttype": "tcp"}],
        )
        portal = _proc("redis", "portal-redis", "portal", cmd=["./proxy"])
        expected = app_obj(
            "redis",
            apptype="resource",
            procs=[redis],
            portals=[portal],
            extra={"resourceinstances": []},
        )
        await rest.expect(
            "DELETE",
            "/api/v1/apps/redis/",
            status=403,
            key="app",
            msg="Not allow to delete resource app.",
            url="/v1/apps/",
            obj=expected,
        )


RCLIENT_YAML = """\
appname: rclient
use_resources:
  redis:
    memory: 128M
    num_instances: 1
    services:
      - redis
worker:
  cmd: ./client
"""


def _instance_obj() -> dict[str, Any]:
    """resource.redis.rclient as COMPAT 2.9 shows it: the template rendered for rclient."""
    name = "resource.redis.rclient"
    common = {
        "image": f"registry.lain.local/redis:release-{V1}",
        "dnssearchs": ["rclient.redis.resource.lain"],
    }
    redis = _proc(
        name,
        "redis",
        "worker",
        memory="128 MB",
        cmd=["redis", "-p", "3333"],
        ports=[{"portnumber": 3333, "porttype": "tcp"}],
        pods=[pod_obj(f"{name}.worker.redis", 1, 3333)],
        **common,
    )
    portal = _proc(
        name,
        "portal-redis",
        "portal",
        cmd=["./proxy"],
        pods=[pod_obj(f"{name}.portal.portal-redis_rclient", 1, 0)],
        **common,
    )
    return app_obj(name, apptype="resource-instance", procs=[redis], portals=[portal])


class TestResourceInstances:
    async def test_200_lists_no_instances(self, rest: Rest) -> None:
        await _deployed(rest, "redis", REDIS_YAML)
        await rest.expect(
            "GET",
            "/api/v1/resources/redis/instances/",
            status=200,
            key="instances",
            url="/v1/resources/redis/instances/",
            obj=[],
        )

    async def test_200_lists_the_instance_of_each_client(self, rest: Rest) -> None:
        await _deployed(rest, "redis", REDIS_YAML)
        await _deployed(rest, "rclient", RCLIENT_YAML)
        await rest.expect(
            "GET",
            "/api/v1/resources/redis/instances/",
            status=200,
            key="instances",
            url="/v1/resources/redis/instances/",
            obj=[_instance_obj()],
        )
        client = (await rest.request("GET", "/api/v1/apps/rclient/")).json()["app"]
        assert client["useresources"] == [
            {
                "resourcename": "redis",
                "resourceprocs": ["portal-redis"],
                "resourceinstance": _instance_obj(),
            }
        ]
        resource = (await rest.request("GET", "/api/v1/apps/redis/")).json()["app"]
        assert resource["resourceinstances"] == [_instance_obj()]
        # An instance runs its resource's releases.
        await rest.expect(
            "GET",
            "/api/v1/repos/resource.redis.rclient/versions/",
            status=200,
            key="version",
            url="/v1/repos/resource.redis.rclient/versions/",
            obj={
                "appname": "resource.redis.rclient",
                "tags": [V1],
                "url": "/v1/repos/resource.redis.rclient/versions/",
            },
        )

    async def test_unknown_resource_404(self, rest: Rest) -> None:
        await rest.expect(
            "GET",
            "/api/v1/resources/nope/instances/",
            status=404,
            key="app",
            msg="app with appname nope not exist, has not been reposited yet",
            url="/v1/repos/",
        )

    async def test_undeploying_the_client_reports_its_instance(
        self, rest: Rest, fake_scheduler: FakeScheduler
    ) -> None:
        await _deployed(rest, "redis", REDIS_YAML)
        await _deployed(rest, "rclient", RCLIENT_YAML)
        instance = "resource.redis.rclient"
        await rest.expect(
            "DELETE",
            "/api/v1/apps/rclient/",
            status=202,
            key="app",
            msg="app remove results:\nremove successed results:\n"
            "    rclient.worker.worker\n    status_code: 202\n"
            "    message: PodGroupSpec will be deleted from the orc engine.\n"
            "remove missed results:\nremove failed results:\n"
            # The instance's report has no header of its own; its entries in 2.7 order.
            f"resource instance remove results:\n  {instance}\n"
            "remove successed results:\n"
            f"    {instance}.portal.portal-redis\n    status_code: 202\n"
            "    message: Dependency pod will be removed from the orc engine.\n"
            f"    {instance}.worker.redis\n    status_code: 202\n"
            "    message: PodGroupSpec will be deleted from the orc engine.\n"
            "remove missed results:\nremove failed results:\n\n",
            url="/v1/apps/",
            obj=repo_obj("rclient"),
        )
        assert fake_scheduler.jobs == {}


def test_updatetime_matcher_is_strict() -> None:
    assert UPDATETIME == "2018-06-13 07:19:10"
    assert UPDATETIME != "2018-06-13T07:19:10"


async def test_undeploy_reports_each_resource_instance_in_py2_order(
    rest: Rest, fake_scheduler: FakeScheduler
) -> None:
    """LAIN's instance reports were a dict keyed by instance name, each report followed by an
    empty line, none with a header of its own."""
    await _deployed(rest, "redis", REDIS_YAML)
    await _deployed(rest, "cache", REDIS_YAML.replace("redis", "cache"))
    two = "appname: two\nuse_resources:\n"
    for resource in ("cache", "redis"):  # lain.yaml order is not the report's
        two += f"  {resource}:\n    services:\n      - {resource}\n"
    await _deployed(rest, "two", two + "worker:\n  cmd: ./client\n")

    def removed(job: str, portal: bool = False) -> str:
        message = (
            "Dependency pod will be removed from the orc engine."
            if portal
            else "PodGroupSpec will be deleted from the orc engine."
        )
        return f"    {job}\n    status_code: 202\n    message: {message}\n"

    redis, cache = "resource.redis.two", "resource.cache.two"
    await rest.expect(
        "DELETE",
        "/api/v1/apps/two/",
        status=202,
        key="app",
        msg="app remove results:\nremove successed results:\n"
        + removed("two.worker.worker")
        + "remove missed results:\nremove failed results:\n"
        + "resource instance remove results:\n"
        + f"  {redis}\nremove successed results:\n"
        + removed(f"{redis}.worker.redis")
        + removed(f"{redis}.portal.portal-redis", portal=True)
        + "remove missed results:\nremove failed results:\n\n"
        + f"  {cache}\nremove successed results:\n"
        + removed(f"{cache}.portal.portal-cache", portal=True)
        + removed(f"{cache}.worker.cache")
        + "remove missed results:\nremove failed results:\n\n",
        url="/v1/apps/",
        obj=repo_obj("two"),
    )
    assert fake_scheduler.jobs == {}
