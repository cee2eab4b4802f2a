"""COMPAT 3.14 and 3.15: auth status, oplogs, and the API documents."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes.sso import FakeSso
from tests.live import free_port, serve
from tests.rest_compat.helpers import (
    DOCS,
    UNAUTHORIZED_CONSOLE,
    V1,
    Matches,
    Rest,
    RestWith,
    assert_reply,
    deploy,
    deployed_hello,
    oplog_entries,
    publish,
    register,
)

ISO_MS = Matches(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z")


async def test_auth_status_closed(rest: Rest) -> None:
    await rest.expect(
        "GET",
        "/api/v1/authorize/status/",
        status=200,
        key="auth",
        msg="get auth status success",
        url="/v1/authorize/status/",
        obj={"status": "closed"},
    )


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
async def test_oplog_is_a_json_string_newest_first(rest: Rest, method: str) -> None:
    await deployed_hello(rest)
    assert (
        await rest.request("PATCH", "/api/v1/apps/hello/procs/web/", {"num_instances": 2})
    ).status_code == 202
    text = await rest.expect(
        method,
        "/api/v1/oplogs/hello/",
        status=200,
        key="oplog",
        url="/v1/oplogs/hello/",
        obj=Matches(r"\[.*\]"),
    )
    assert text.startswith('[{"fields": {"app": "hello", "user": "unknown", "time": "')
    entries = json.loads(text)
    assert [e["fields"]["op"] for e in entries] == ["SCALE", "DEPLOY", "PUBLISH", "REPOSIT"]
    assert entries[0] == {
        "fields": {
            "app": "hello",
            "user": "unknown",
            "time": ISO_MS,
            "message": "proc web scaled with instance 2",
            "app_version": "",
            "op": "SCALE",
        },
        "model": "oplog.oplog",
        "pk": entries[1]["pk"] + 1,
    }
    assert [e["pk"] for e in entries] == sorted((e["pk"] for e in entries), reverse=True)


async def test_oplog_names_and_messages_are_lains(rest: Rest) -> None:
    """Each operation as LAIN's oplog wrote it (COMPAT 3.15); the version only for deploys
    and updates. PUBLISH is ours: LAIN's releases were registry pushes."""
    await deployed_hello(rest)
    web, foo = "/api/v1/apps/hello/procs/web/", "/api/v1/apps/hello/procs/foo/"
    for method, path, body in [
        ("PATCH", web, {"num_instances": 2}),
        ("PATCH", foo, {"memory": "128m"}),
        ("PATCH", web, {"cpu": 1}),
        ("PATCH", web, {"operation": "stop", "instance": 2}),
        ("PATCH", foo, {"operation": "restart"}),
        ("PATCH", web, {"operation": "start"}),
        ("DELETE", foo, None),
        ("POST", "/api/v1/apps/hello/procs/", {"procname": "foo"}),
        ("PUT", "/api/v1/apps/hello/", {"meta_version": V1}),
        ("DELETE", "/api/v1/apps/hello/", None),
    ]:
        response = await rest.request(method, path, body)
        assert response.status_code in (201, 202), response.text
    entries = await oplog_entries(rest)
    assert [e["pk"] for e in entries] == sorted((e["pk"] for e in entries), reverse=True)
    assert [(e["model"], e["fields"].pop("time")) for e in entries] == [
        ("oplog.oplog", ISO_MS)
    ] * 13
    assert [e["fields"] for e in entries] == [
        _oplog("DELETE"),
        _oplog("UPDATE", version=V1),
        _oplog("DEPLOY", "proc foo depolyd"),
        _oplog("DELETE", "delete proc foo"),
        _oplog("START", "start proc web"),
        _oplog("RESTART", "restart proc foo"),
        _oplog("STOP", "stop container /hello.web.web.v1-i2-d0"),
        _oplog("SCALE", "proc web scaled with memory None, cpu 1"),
        _oplog("SCALE", "proc foo scaled with memory 134217728, cpu None"),
        _oplog("SCALE", "proc web scaled with instance 2"),
        _oplog("DEPLOY", version=V1),
        _oplog("PUBLISH", version=V1),
        _oplog("REPOSIT"),
    ]


def _oplog(op: str, message: str = "", *, version: str = "") -> dict[str, str]:
    return {"app": "hello", "user": "unknown", "message": message, "app_version": version, "op": op}


async def test_oplog_of_an_unknown_app_is_empty(rest: Rest) -> None:
    await rest.expect(
        "GET", "/api/v1/oplogs/nope/", status=200, key="oplog", url="/v1/oplogs/nope/", obj="[]"
    )


async def test_swagger_documents_every_route(rest: Rest, base_url: str) -> None:
    response = await rest.request("GET", "/v1/swagger/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    spec = response.json()
    assert spec["swagger"] == "2.0"
    assert spec["basePath"] == "/api/v1"
    assert spec["host"] == base_url.removeprefix("http://")
    assert set(spec["paths"]["/apps/{app}/procs/{proc}/"]) == {"get", "patch", "delete"}
    assert set(spec["paths"]["/repos/{app}/versions/"]) == {"get", "post"}
    assert len(spec["paths"]) == 23
    patch = spec["paths"]["/apps/{app}/procs/{proc}/"]["patch"]
    assert [p["name"] for p in patch["parameters"]] == ["app", "proc", "body"]
    assert set(patch["responses"]) == {"202", "400", "404", "405", "500", "503"}


async def test_docs_page_lists_the_routes(rest: Rest) -> None:
    response = await rest.request("GET", "/api/v1/docs/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<code>/api/v1/apps/{app}/procs/{proc}/</code>" in response.text
    assert "<script" not in response.text


async def test_docs_wrong_method_405(rest: Rest) -> None:
    await rest.expect(
        "POST", "/api/v1/docs/", status=405, key="docs", msg="invalid http method POST", url=DOCS
    )


STREAM_YAML = """\
appname: stream
web:
  cmd: ./web
  ports: "9600:80"
worker.foo:
  cmd: ./foo
  ports:
    - "9502:8000/udp"
    - 9501
"""

OTHER_STREAM_YAML = """\
appname: other
worker:
  cmd: ./other
  ports: "9550:22"
"""


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/usedstreamrouterports",
        "/api/v1/usedstreamrouterports/",
        # LAIN's pattern had no `$`: anything after the name matched too (COMPAT 1.1).
        "/v1/usedstreamrouterportsXYZ",
    ],
)
async def test_used_stream_router_ports_of_deployed_procs(rest: Rest, path: str) -> None:
    await rest.expect(
        "GET", path, status=200, key="streamrouter", url="/v1/usedstreamrouterports", obj=[]
    )
    for app, yaml in (("stream", STREAM_YAML), ("other", OTHER_STREAM_YAML)):
        await register(rest, app)
        await publish(rest, app, V1, yaml)
        await deploy(rest, app)
    # An undeployed proc gives its ports back.
    assert (await rest.request("DELETE", "/api/v1/apps/stream/procs/web/")).status_code == 202
    response = await rest.request("GET", path)
    assert_reply(
        response,
        status=200,
        key="streamrouter",
        url="/v1/usedstreamrouterports",
        obj=[
            _stream_port(9501, 9501, "tcp", "stream", "stream.worker.foo"),
            _stream_port(9502, 8000, "udp", "stream", "stream.worker.foo"),
            _stream_port(9550, 22, "tcp", "other", "other.worker.worker"),
        ],
    )
    # Each StreamProc in Python 2's key order, as LAIN relayed deployd's list.
    assert response.content.startswith(
        b'{"msg": "", "url": "/v1/usedstreamrouterports", "streamrouter": [{"ProcName": '
        b'"stream.worker.foo", "NameSpace": "stream", "dstport": 9501, "srcport": 9501, '
        b'"proto": "tcp"}, '
    )


def _stream_port(src: int, dst: int, proto: str, app: str, job: str) -> dict[str, Any]:
    return {"srcport": src, "dstport": dst, "proto": proto, "NameSpace": app, "ProcName": job}


async def test_used_stream_router_ports_wrong_method_405(rest: Rest) -> None:
    await rest.expect(
        "POST",
        "/api/v1/usedstreamrouterports",
        status=405,
        key="streamrouter",
        msg="invalid http method POST",
        url=DOCS,
    )


async def _refused(rest: Rest, query: str, method: str = "GET") -> None:
    await rest.expect(
        method,
        f"/api/v1/authorize/{query}",
        status=401,
        key="auth",
        msg=UNAUTHORIZED_CONSOLE,
        url=DOCS,
    )


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_authorize_without_sso(rest: Rest, method: str) -> None:
    """Any method, no token needed (COMPAT 3.14); without SSO no code is ever good."""
    await rest.expect(
        method,
        "/api/v1/authorize/",
        status=400,
        key="auth",
        msg="invalid request: should be json body with sso code(string)",
        url=DOCS,
    )
    for query in ("?code=abc", "?code="):
        await _refused(rest, query, method)


SSO_CLIENT = {"sso_client_id": "console", "sso_client_secret": "s3cret"}


async def test_authorize_exchanges_the_code_with_sso(rest_with: RestWith) -> None:
    sso = FakeSso(
        client_id="console",
        client_secret="s3cret",
        redirect_uri="http://console.lain.local/api/v1/authorize/",
        codes={"good": "tok-1"},
    )
    async with serve(sso.app()) as sso_url, rest_with(sso_url=sso_url, **SSO_CLIENT) as rest:
        response = await rest.client.get("/api/v1/authorize/?code=good")
        assert response.status_code == 302
        assert response.content == b""
        assert response.headers["location"] == (
            "http://archon.lain.local/authorize/complete?access_token=tok-1&expires_in=3600"
        )
        assert response.headers["x-frame-options"] == "SAMEORIGIN"
        assert sso.requests == [
            {
                "client_id": "console",
                "grant_type": "authorization_code",
                "client_secret": "s3cret",
                "code": "good",
                "redirect_uri": "http://console.lain.local/api/v1/authorize/",
            }
        ]
        # A code is good once; SSO refuses it (and any other) the second time.
        for code in ("good", "bogus"):
            await _refused(rest, f"?code={code}")


async def test_authorize_with_sso_unreachable_401(rest_with: RestWith) -> None:
    async with rest_with(sso_url=f"http://127.0.0.1:{free_port()}", **SSO_CLIENT) as rest:
        await _refused(rest, "?code=good")
