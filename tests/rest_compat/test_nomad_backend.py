"""The REST layer over real HTTP with the Nomad backend, against the fake Nomad."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from backends.nomad import JobOptions, NomadScheduler, NomadSettings
from server.app import create_app
from server.settings import Settings
from tests.fakes.nomad_server import FakeNomadServer
from tests.live import serve
from tests.rest_compat.helpers import V1, Rest, deploy, deployed_hello, publish, register, until


@pytest.fixture
async def nomad_rest(settings: Settings) -> AsyncIterator[Rest]:
    server = FakeNomadServer(heartbeat=0.1).start()
    try:
        # hello keeps /data: on Nomad that needs a host directory to bind it from.
        scheduler = NomadScheduler(
            NomadSettings(address=server.url),
            timeout=5.0,
            options=JobOptions(volumes_root="/srv/lain"),
        )
        app = create_app(replace(settings, backend="nomad"), scheduler=scheduler)
        async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
            yield Rest(client)
    finally:
        server.stop()


async def test_instance_env_has_tz_before_lains_variables(nomad_rest: Rest) -> None:
    """The allocation's task env, as Nomad runs it: the lain.yaml env, TZ, then LAIN_*."""
    await deployed_hello(nomad_rest)

    async def pods() -> list[dict[str, Any]] | None:
        proc = (await nomad_rest.request("GET", "/api/v1/apps/hello/procs/web/")).json()["proc"]
        found: list[dict[str, Any]] = proc["pods"]
        return found or None

    (pod,) = await until(pods)
    assert pod["envs"] == [
        "ENV_A=enva",
        "TZ=Asia/Shanghai",
        "LAIN_APPNAME=hello",
        f"LAIN_APP_RELEASE_VERSION={V1}",
        "LAIN_PROCNAME=web",
        "LAIN_DOMAIN=lain.local",
    ]


async def test_portal_instances_carry_the_portals_proc_name(nomad_rest: Rest) -> None:
    """A portal's job is named per client; its instances are the portal's own proc."""
    echo = "appname: echo\nservice.echo:\n  cmd: ./echo\n  portal:\n    cmd: ./proxy\n"
    client = "appname: client\nuse_services:\n  echo:\n    - echo\nworker:\n  cmd: ./client\n"
    for app, yaml in (("echo", echo), ("client", client)):
        await register(nomad_rest, app)
        await publish(nomad_rest, app, V1, yaml)
        await deploy(nomad_rest, app)

    async def pods() -> list[dict[str, Any]] | None:
        app = (await nomad_rest.request("GET", "/api/v1/apps/echo/")).json()["app"]
        found: list[dict[str, Any]] = app["portals"][0]["pods"]
        return found or None

    (pod,) = await until(pods)
    assert pod["containername"] == "/echo.portal.portal-echo_client.v1-i1-d0"
    assert pod["envs"] == [
        "TZ=Asia/Shanghai",
        "LAIN_APPNAME=echo",
        f"LAIN_APP_RELEASE_VERSION={V1}",
        "LAIN_PROCNAME=portal-echo",
        "LAIN_DOMAIN=lain.local",
        "LAIN_SERVICE_NAME=echo",
        "LAIN_CLIENT_APPNAME=client",
    ]
