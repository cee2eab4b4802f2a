"""The curl lines of LAIN's API.md, run as written against the app with its default backend
(real processes), after registering and publishing, each getting its documented answer."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from tests.rest_compat.helpers import V1, Rest, local_yaml, publish, until

# Verbatim from API.md, in an order that makes each line meaningful (DELETE last).
API_MD = [
    (
        """curl /api/v1/repos/ -H "Content-Type: application/json" -d '{"appname":"hello"}'""",
        201,
        "repos",
    ),
    ("curl /api/v1/repos/", 200, "repos"),
    ("curl /api/v1/repos/:appName/", 200, "repo"),
    ("curl /api/v1/repos/:appName/roles/", 200, "role"),
    ("curl /api/v1/repos/:appName/roles/:username/", 200, "role"),
    # Auth is off: LAIN had no maintainers to show (COMPAT 3.4).
    ("curl /api/v1/repos/:appName/maintainers/", 403, "maintainer"),
    (
        'curl -x POST /api/v1/repos/:appName/maintainers/ -H "Content-Type: application/json"'
        """ -d '{"username": "username", "role": "role"}'""",
        403,
        "maintainer",
    ),
    ("curl /api/v1/repos/:appName/maintainers/:username/", 403, "maintainer"),
    ("curl -X DELETE /api/v1/repos/:appName/maintainers/:username/", 403, "maintainer"),
    ("curl /api/v1/repos/:appName/details/", 200, "detail"),
    # No commits in the body and no GitLab to fetch them from; and this lain.yaml binds no
    # giturl, which LAIN checked first (COMPAT 3.7).
    ("curl -XPOST /api/v1/repos/:appName/push/", 400, "image_push"),
    (
        """curl /api/v1/apps/ -H "Content-Type: application/json" -d '{"appname":"hello"}'""",
        202,
        "app",
    ),
    ("curl /api/v1/apps/", 200, "apps"),
    ("curl /api/v1/apps/:appName/", 200, "app"),
    (
        'curl -X PUT /api/v1/apps/:appName/ -H "Content-Type: application/json" -d '
        """'{"meta_version": "1435893486-ead17ccee6d904f8e01f339e9e96c00812c70756"}'""",
        202,
        "app",
    ),
    ("curl /api/v1/apps/:appName/procs/", 200, "procs"),
    (
        'curl -X POST /api/v1/apps/:appName/procs/ -H "Content-Type: application/json" '
        """-d '{"procname": "client"}'""",
        201,
        "proc",
    ),
    # Without the trailing slash: Django's 301 to the slashed URL (COMPAT 1.1).
    ("curl /api/v1/apps/:appName/procs/:procName", 301, ""),
    # "Note that both cannot take effect at once": scale is a separate operation.
    (
        'curl -X PATCH /api/v1/apps/:appName/procs/:procName/ -H "Content-Type: '
        """application/json" -d '{"num_instances":2, "cpu":1, "memory":"64M"}'""",
        400,
        "proc",
    ),
    ("curl -X DELETE /api/v1/apps/:appName/procs/:procName/", 202, "proc"),
    ("curl /api/v1/resources/:resourceName/instances/", 200, "instances"),
    # Without the trailing slash: the 301 (COMPAT 1.1); then subscribe and unsubscribe.
    ("curl /api/v1/notify/imagepush", 301, ""),
    (
        "curl -XPOST -H 'Content-type: application/json' /api/v1/notify/imagepush/ -d "
        """'{"notify_url": "http://lxcmond.lain:3001/api/v1/imagepush"}'""",
        200,
        "notify",
    ),
    (
        "curl -XDELETE -H 'Content-type: application/json' /api/v1/notify/imagepush/ -d "
        """'{"notify_url": "http://lxcmond.lain:3001/api/v1/imagepush"}'""",
        200,
        "notify",
    ),
    ("curl -X DELETE /api/v1/apps/:appName/", 202, "app"),
]

PLACEHOLDERS = {
    ":appName": "hello",
    ":procName": "web",
    ":username": "username",
    ":resourceName": "hello",
}
DOCUMENTED_VERSION = "1435893486-ead17ccee6d904f8e01f339e9e96c00812c70756"


@dataclass(frozen=True)
class CurlLine:
    method: str
    path: str
    data: bytes | None
    headers: dict[str, str]


def parse_curl(line: str) -> CurlLine:
    """The request curl would send for one of API.md's lines."""
    words = shlex.split(line)
    assert words[0] == "curl"
    method: str | None = None
    data: bytes | None = None
    headers: dict[str, str] = {}
    path = ""
    rest = iter(words[1:])
    for word in rest:
        if word == "-X":
            method = next(rest)
        elif word.startswith("-X"):
            method = word[2:]
        elif word == "-x":
            next(rest)  # a proxy (API.md's typo for -X); -d makes the request a POST anyway
        elif word == "-H":
            name, _, value = next(rest).partition(":")
            headers[name.strip()] = value.strip()
        elif word == "-d":
            data = next(rest).encode()
        else:
            path = word
    for placeholder, value in PLACEHOLDERS.items():
        path = path.replace(placeholder, value)
    return CurlLine(method or ("POST" if data is not None else "GET"), path, data, headers)


def test_parse_curl_reads_api_md_as_curl_does() -> None:
    assert parse_curl(API_MD[6][0]) == CurlLine(
        "POST",
        "/api/v1/repos/hello/maintainers/",
        b'{"username": "username", "role": "role"}',
        {"Content-Type": "application/json"},
    )
    assert parse_curl("curl -XPOST /api/v1/repos/:appName/push/").method == "POST"


async def test_api_md_curl_lines_get_their_documented_answers(local_rest: Rest) -> None:
    client = local_rest.client
    for index, (line, status, key) in enumerate(API_MD):
        request = parse_curl(line)
        if index == 1:
            # Registered by the first line; now publish (there is no registry to push to):
            # the version PUT names, and a newer one that POST /apps/ deploys.
            for version in (DOCUMENTED_VERSION, V1):
                await publish(local_rest, "hello", version, local_yaml(worker="client"))
        if request.method == "POST" and request.path.endswith("/procs/"):
            # The line deploys a proc that is not deployed: make `client` one.
            response = await client.delete("/api/v1/apps/hello/procs/client/")
            assert response.status_code == 202, response.text
        response = await client.request(
            request.method, request.path, content=request.data, headers=request.headers
        )
        assert response.status_code == status, (line, response.text)
        if status == 301:
            assert response.headers["location"].endswith(request.path + "/")
            continue
        assert set(response.json()) == {key, "msg", "url"}, line
        if request.path == "/api/v1/apps/hello/" and request.method == "GET":
            await _web_serves_http(local_rest)


async def _web_serves_http(rest: Rest) -> None:
    """The deployed web proc is a real process answering on the port its pod shows."""

    async def running_pod() -> dict[str, object] | None:
        proc = (await rest.request("GET", "/api/v1/apps/hello/procs/web/")).json()["proc"]
        pods = [pod for pod in proc["pods"] if pod["status"] == "True"]
        return pods[0] if pods else None

    pod = await until(running_pod)

    async def answers() -> str | None:
        url = f"http://{pod['containerip']}:{pod['containerport']}/"
        try:
            return (await rest.client.get(url)).text
        except OSError:
            return None

    assert await until(answers) == V1
