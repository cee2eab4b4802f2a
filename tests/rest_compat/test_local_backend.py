"""The REST layer over real HTTP against the default local backend, with real processes."""

from __future__ import annotations

from typing import Any

from tests.app_python import APP_PYTHON
from tests.rest_compat.helpers import (
    V1,
    Matches,
    Rest,
    deploy,
    local_yaml,
    publish,
    register,
    until,
)

WEB = "/api/v1/apps/hello/procs/web/"
FOO = "/api/v1/apps/hello/procs/foo/"
SHANGHAI_TIME = Matches(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


async def _proc(rest: Rest, path: str) -> dict[str, Any]:
    proc: dict[str, Any] = (await rest.request("GET", path)).json()["proc"]
    return proc


async def _statuses(rest: Rest, path: str, wanted: list[str]) -> dict[str, Any]:
    """The proc once its pods' statuses are `wanted` (bounded by `until`)."""

    async def check() -> dict[str, Any] | None:
        proc = await _proc(rest, path)
        return proc if [pod["status"] for pod in proc["pods"]] == wanted else None

    found: dict[str, Any] = await until(check)
    return found


async def _answers(rest: Rest, pod: dict[str, Any]) -> str:
    async def get() -> str | None:
        try:
            url = f"http://{pod['containerip']}:{pod['containerport']}/"
            return (await rest.client.get(url)).text
        except OSError:
            return None

    text: str = await until(get)
    return text


async def test_deploy_operate_scale_resize_undeploy(local_rest: Rest) -> None:
    rest = local_rest
    await register(rest)
    await publish(rest, "hello", V1, local_yaml())
    await deploy(rest)

    web = await _statuses(rest, WEB, ["True"])
    (pod,) = web["pods"]
    assert (web["numinstances"], web["cpu"], web["memory"]) == (1, 0, "64 MB")
    assert pod["containerid"].isdigit()  # the process id
    assert pod["containername"] == "/hello.web.web.v1-i1-d0"
    assert pod["uptime"] == SHANGHAI_TIME
    assert {"LAIN_APPNAME=hello", f"LAIN_APP_RELEASE_VERSION={V1}"} <= set(pod["envs"])
    assert await _answers(rest, pod) == V1

    # Stop, then start instance 1: the pod shows it, and so does its history.
    for operation, status in (("stop", "False"), ("start", "True")):
        response = await rest.request("PATCH", WEB, {"operation": operation, "instance": 1})
        assert response.status_code == 202, response.text
        await _statuses(rest, WEB, [status])
    history = "/api/v1/apps/hello/procs/web/instance/1/histories/"

    async def stopped_then_started() -> bool:
        changes = (await rest.request("GET", history)).json()["proc"]["StatusHistory"]
        # Newest first, a start after the stop; health changes come in between.
        statuses = [c["status"] for c in changes if not c["status"].startswith("health_status")]
        return bool(statuses) and statuses[0] == "start" and "stop" in statuses

    await until(stopped_then_started)

    response = await rest.request("PATCH", WEB, {"num_instances": 2})
    assert response.status_code == 202, response.text
    web = await _statuses(rest, WEB, ["True", "True"])
    assert web["numinstances"] == 2
    assert len({pod["containerport"] for pod in web["pods"]}) == 2

    response = await rest.request("PATCH", FOO, {"memory": "128m"})
    assert response.status_code == 202, response.text
    foo = await _statuses(rest, FOO, ["True"])
    assert foo["memory"] == "128 MB"

    response = await rest.request("DELETE", "/api/v1/apps/hello/")
    assert response.status_code == 202, response.text
    assert response.json()["msg"].startswith(
        "app remove results:\nremove successed results:\n    hello.worker.foo\n"
    )
    assert (await rest.request("GET", WEB)).status_code == 404


SLEEP = f'[{APP_PYTHON}, -c, "import time; time.sleep(3600)"]'
ECHO_SERVER = f"""\
appname: echo-server
service.echo:
  cmd: {SLEEP}
  portal:
    cmd: {SLEEP}
"""
GOOD = f"""\
appname: good
worker:
  cmd: {SLEEP}
  env:
    - ENV_A=enva
use_services:
  echo-server:
    - echo
"""
PATH = Matches(r"PATH=.+")


async def test_instance_env_is_lains(local_rest: Rest) -> None:
    """The lain.yaml env, then TZ before the LAIN_* variables, then deployd's (COMPAT 7.4);
    a portal's instances carry the portal's own proc and pod names, not its per-client job
    name (`echo-server.portal.portal-echo_good`)."""
    rest = local_rest
    for app, yaml in (("echo-server", ECHO_SERVER), ("good", GOOD)):
        await register(rest, app)
        await publish(rest, app, V1, yaml)
        await deploy(rest, app)

    async def pods(path: str, key: str) -> list[dict[str, Any]] | None:
        app = (await rest.request("GET", path)).json()["app"]
        found: list[dict[str, Any]] = app[key][0]["pods"]
        return found if [pod["status"] for pod in found] == ["True"] else None

    (worker,) = await until(lambda: pods("/api/v1/apps/good/", "procs"))
    assert worker["envs"] == [
        "ENV_A=enva",
        "TZ=Asia/Shanghai",
        "LAIN_APPNAME=good",
        f"LAIN_APP_RELEASE_VERSION={V1}",
        "LAIN_PROCNAME=worker",
        "LAIN_DOMAIN=lain.local",
        "DEPLOYD_POD_INSTANCE_NO=1",
        "DEPLOYD_POD_NAME=good.worker.worker",
        "DEPLOYD_POD_NAMESPACE=good",
        PATH,
    ]
    (portal,) = await until(lambda: pods("/api/v1/apps/echo-server/", "portals"))
    assert portal["envs"] == [
        "TZ=Asia/Shanghai",
        "LAIN_APPNAME=echo-server",
        f"LAIN_APP_RELEASE_VERSION={V1}",
        "LAIN_PROCNAME=portal-echo",
        "LAIN_DOMAIN=lain.local",
        "LAIN_SERVICE_NAME=echo",
        "LAIN_CLIENT_APPNAME=good",
        "DEPLOYD_POD_INSTANCE_NO=1",
        "DEPLOYD_POD_NAME=echo-server.portal.portal-echo",
        "DEPLOYD_POD_NAMESPACE=echo-server",
        PATH,
    ]
    # The job keeps the client in its name: one run of the portal per client app.
    assert portal["containername"] == "/echo-server.portal.portal-echo_good.v1-i1-d0"
    # The client before its service, so that the fixture (which goes by name) finds none.
    for app in ("good", "echo-server"):
        assert (await rest.request("DELETE", f"/api/v1/apps/{app}/")).status_code == 202
