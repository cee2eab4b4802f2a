"""A REST client that checks whole LAIN replies, and the objects LAIN's app shows."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx

from tests.app_python import APP_PYTHON
from tests.releases import meta_version

V1 = meta_version(1_528_874_349)
V2 = meta_version(1_528_960_749)

# The COMPAT examples' app: a web proc and a two-instance worker.
HELLO_YAML = """\
appname: hello
giturl: gitlab.example.com/lain/hello.git
web:
  cmd: hello
  port: 80
  memory: 64m
  env:
    - ENV_A=enva
  persistent_dirs:
    - /data
worker.foo:
  cmd: worker -c 1
  num_instances: 2
"""

# For the local backend, which runs the cmd itself: a web server on $PORT answering with the
# release it runs, and a worker that sleeps.
WEB_SERVER = """\
import http.server, os
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(os.environ["LAIN_APP_RELEASE_VERSION"].encode())
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


def local_yaml(app: str = "hello", *, worker: str = "foo") -> str:
    """A lain.yaml the local backend can run: `web` serves HTTP, `worker` sleeps."""
    indented = "\n".join("      " + line for line in WEB_SERVER.splitlines())
    return f"""\
appname: {app}
web:
  cmd:
    - {APP_PYTHON}
    - -c
    - |
{indented}
  port: 8080
  memory: 64m
worker.{worker}:
  # A list: a string cmd is split on white space (LAIN's rule), which would cut the code.
  cmd: [{APP_PYTHON}, -c, "import time; time.sleep(3600)"]
"""


DOCS = "/v1/docs/"
NOT_JSON = object()  # send a body that is not JSON
_NO_BODY = object()


class Matches:
    """Equal to any string that matches `pattern` (for times made by the server)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = re.compile(pattern)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and self.pattern.fullmatch(other) is not None

    def __hash__(self) -> int:
        return hash(self.pattern.pattern)

    def __repr__(self) -> str:
        return f"Matches({self.pattern.pattern!r})"


UPDATETIME = Matches(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


class Rest:
    """Requests to a live server; `expect` asserts the whole reply LAIN would have given."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def request(
        self,
        method: str,
        path: str,
        body: Any = _NO_BODY,
        *,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        content: bytes | None = None
        if body is NOT_JSON:
            content = b"{not json"
        elif body is not _NO_BODY:
            content = json.dumps(body).encode()
        return await self.client.request(method, path, content=content, headers=headers)

    async def expect(
        self,
        method: str,
        path: str,
        body: Any = _NO_BODY,
        *,
        status: int,
        key: str,
        url: str,
        msg: str = "",
        obj: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        response = await self.request(method, path, body, headers=headers)
        assert_reply(response, status=status, key=key, url=url, msg=msg, obj=obj)
        return response.json()[key] if response.content else None


def assert_reply(
    response: httpx.Response, *, status: int, key: str, url: str, msg: str = "", obj: Any = None
) -> None:
    """The status, LAIN's headers and the whole envelope."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["x-frame-options"] == "SAMEORIGIN"
    if status == 204:
        assert response.content == b""
        return
    assert response.json() == {key: obj, "msg": msg, "url": url}


async def until(
    check: Callable[[], Awaitable[Any]], *, within: float = 30.0, interval: float = 0.05
) -> Any:
    """Poll `check` until it returns something truthy; fail after `within` seconds."""
    async with asyncio.timeout(within):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(interval)


async def register(rest: Rest, app: str = "hello") -> None:
    response = await rest.request("POST", "/api/v1/repos/", {"appname": app})
    assert response.status_code == 201, response.text


async def publish(rest: Rest, app: str, version: str, lain_yaml: str) -> None:
    body = {"meta_version": version, "lain_yaml": lain_yaml}
    response = await rest.request("POST", f"/api/v1/repos/{app}/versions/", body)
    assert response.status_code == 201, response.text


async def deploy(rest: Rest, app: str = "hello") -> None:
    response = await rest.request("POST", "/api/v1/apps/", {"appname": app})
    assert response.status_code == 202, response.text


async def deployed_hello(rest: Rest, *versions: str) -> None:
    """hello registered, its releases published (V1 by default), the newest deployed."""
    await register(rest)
    for version in versions or (V1,):
        await publish(rest, "hello", version, HELLO_YAML)
    await deploy(rest)


def repo_obj(app: str) -> dict[str, Any]:
    return {"appname": app, "url": f"/v1/repos/{app}/"}


def pod_obj(job_id: str, number: int, port: int, *, running: bool = True) -> dict[str, Any]:
    """A pod as the FakeScheduler's instance shows (no start time, no env)."""
    return {
        "containerid": f"{job_id}-{number}",
        "containername": f"/{job_id}.v1-i{number}-d0",
        "containerip": "127.0.0.1",
        "containerport": port,
        "nodeip": "127.0.0.1",
        "status": "True" if running else "False",
        "uptime": "0001-01-01 00:00:00Z",
        "envs": [],
    }


def web_obj(
    *,
    version: str = V1,
    status: bool = True,
    instances: int = 1,
    memory: str | None = None,
    cpu: int = 0,
    stopped: tuple[int, ...] = (),
) -> dict[str, Any]:
    """hello's web proc; `status=False` is the proc as lain.yaml has it, without pods."""
    pods = [
        pod_obj("hello.web.web", n, 80, running=n not in stopped) for n in range(1, instances + 1)
    ]
    return {
        "procname": "web",
        "proctype": "web",
        "image": f"registry.lain.local/hello:release-{version}",
        "numinstances": instances if status else 1,
        "cpu": cpu if status else 0,
        "memory": (memory or "64 MB") if status else "64m",
        "persistentdirs": ["/data", "/lain/logs"],
        "dnssearchs": ["hello.lain"],
        "ports": [{"portnumber": 80, "porttype": "tcp"}],
        "mountpoints": ["hello.lain.local", "hello.lain"],
        "httpsonly": False,
        "user": "",
        "workingdir": "",
        "entrypoint": None,
        "cmd": ["hello"],
        "envs": ["ENV_A=enva"],
        "logs": [],
        "pods": pods if status else [],
        "depends": [],
        "lasterror": "",
        "url": "/v1/apps/hello/procs/web/",
    }


def foo_obj(
    *, version: str = V1, status: bool = True, instances: int = 2, memory: str | None = None
) -> dict[str, Any]:
    """hello's worker foo, as `web_obj` does it."""
    pods = [pod_obj("hello.worker.foo", n, 0) for n in range(1, instances + 1)]
    return {
        "procname": "foo",
        "proctype": "worker",
        "image": f"registry.lain.local/hello:release-{version}",
        "numinstances": instances if status else 2,
        "cpu": 0,
        "memory": (memory or "32 MB") if status else "32m",
        "persistentdirs": ["/lain/logs"],
        "dnssearchs": ["hello.lain"],
        "ports": [],
        "mountpoints": [],
        "httpsonly": True,
        "user": "",
        "workingdir": "",
        "entrypoint": None,
        "cmd": ["worker", "-c", "1"],
        "envs": [],
        "logs": [],
        "pods": pods if status else [],
        "depends": [],
        "lasterror": "",
        "url": "/v1/apps/hello/procs/foo/",
    }


def app_obj(
    app: str = "hello",
    *,
    version: str = V1,
    procs: list[dict[str, Any]] | None = None,
    apptype: str = "app",
    portals: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "appname": app,
        "apptype": apptype,
        "metaversion": version,
        "updatetime": UPDATETIME,
        "deployerror": "",
        "canaries": {},
        "procs": [web_obj(version=version), foo_obj(version=version)] if procs is None else procs,
        "portals": portals or [],
        "useservices": [],
        "useresources": [],
        "url": f"/v1/apps/{app}/",
        **(extra or {}),
    }


# The `rest_with` fixture: another app with some settings changed.
RestWith = Callable[..., AbstractAsyncContextManager["Rest"]]

UNAUTHORIZED_CONSOLE = "unauthorized : don't have the access to console"


async def oplog_entries(
    rest: Rest, app: str = "hello", *, headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """`GET /oplogs/<app>/`, its whole envelope checked, and the JSON string it holds parsed.

    With auth on, `headers` must carry a token that may read the app.
    """
    text = await rest.expect(
        "GET",
        f"/api/v1/oplogs/{app}/",
        headers=headers,
        status=200,
        key="oplog",
        url=f"/v1/oplogs/{app}/",
        obj=Matches(r"\[.*\]"),
    )
    entries: list[dict[str, Any]] = json.loads(text)
    return entries
