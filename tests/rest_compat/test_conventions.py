"""COMPAT 1: prefixes, the envelope's bytes, slashes, CORS, 404/405/500 and the check order."""

from __future__ import annotations

import pytest

from resolvers.lain import overview
from rest_compat.py2 import Ordered, Shape, dict_order, dumps, py2_str
from tests.fakes.scheduler import FakeScheduler
from tests.rest_compat.helpers import DOCS, Rest, deployed_hello, register, repo_obj


class TestPython2Bytes:
    @pytest.mark.parametrize(
        ("keys", "order"),
        [
            # The four envelope orders COMPAT 1.2 observed, and its repo and detail objects.
            (["repos", "msg", "url"], ["msg", "url", "repos"]),
            (["repo", "msg", "url"], ["repo", "msg", "url"]),
            (["app", "msg", "url"], ["msg", "url", "app"]),
            (["maintainer", "msg", "url"], ["msg", "url", "maintainer"]),
            (["appname", "url"], ["url", "appname"]),
            (
                ["appname", "giturl", "meta_version", "url"],
                ["url", "meta_version", "giturl", "appname"],
            ),
            (
                ["app", "user", "time", "message", "app_version", "op"],
                ["app", "user", "time", "message", "app_version", "op"],
            ),
            # Django 1.8 serializers: {"model", "fields"}, then "pk".
            (["model", "fields", "pk"], ["fields", "model", "pk"]),
        ],
    )
    def test_dict_order_is_python_27s(self, keys: list[str], order: list[str]) -> None:
        assert dict_order(keys) == order

    def test_shape_is_27s_order_and_dumps_keeps_an_ordered_dict(self) -> None:
        shape = Shape("appname", "giturl", "meta_version", "url")
        assert shape.keys == ("url", "meta_version", "giturl", "appname")
        written = Ordered(url="/u/", meta_version="v", giturl="g", appname="a")
        # The same bytes as a dict built in insertion order and reordered by dumps.
        inserted = {"appname": "a", "giturl": "g", "meta_version": "v", "url": "/u/"}
        assert dumps({"app": written}) == dumps({"app": inserted})

    def test_dumps_leaves_an_ordered_dict_as_it_is(self) -> None:
        # Reordered, these keys would come out as dict_order gives them (test above).
        kept = Ordered([("appname", 1), ("url", 2)])
        assert dumps([kept]) == b'[{"appname": 1, "url": 2}]'
        assert dumps([{"appname": 1, "url": 2}]) == b'[{"url": 2, "appname": 1}]'

    def test_dumps_separators_escaping_and_order(self) -> None:
        assert dumps({"repos": None, "msg": "caf\u00e9\n", "url": "/v1/"}) == (
            b'{"msg": "caf\\u00e9\\n", "url": "/v1/", "repos": null}'
        )

    @pytest.mark.parametrize(
        ("value", "text"),
        [
            ("x", "x"),
            (True, "True"),
            (None, "None"),
            (2.0, "2.0"),
            (0.1 + 0.2, "0.3"),
            ([1, "a"], "[1, u'a']"),
        ],
    )
    def test_py2_str(self, value: object, text: str) -> None:
        assert py2_str(value) == text


async def test_both_prefixes_answer_and_urls_drop_api(rest: Rest) -> None:
    await register(rest)
    for prefix in ("/api/v1", "/v1"):
        await rest.expect(
            "GET",
            f"{prefix}/repos/hello/",
            status=200,
            key="repo",
            url="/v1/repos/hello/",
            obj=repo_obj("hello"),
        )


async def test_envelope_bytes_and_headers(rest: Rest) -> None:
    await register(rest)
    response = await rest.request("GET", "/api/v1/repos/")
    assert response.content == (
        b'{"msg": "", "url": "/v1/repos/", "repos": [{"url": "/v1/repos/hello/", '
        b'"appname": "hello"}]}'
    )
    assert response.headers["content-type"] == "application/json"
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["x-frame-options"] == "SAMEORIGIN"


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
async def test_missing_slash_redirects_permanently(rest: Rest, base_url: str, method: str) -> None:
    response = await rest.client.request(method, "/api/v1/apps/hello/procs/web?x=1")
    assert response.status_code == 301
    assert response.content == b""
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    host = base_url.removeprefix("http://")
    assert response.headers["location"] == f"http://{host}/api/v1/apps/hello/procs/web/?x=1"


async def test_post_without_slash_is_served_as_slashed(rest: Rest) -> None:
    await rest.expect(
        "POST",
        "/api/v1/repos",
        {"appname": "hello"},
        status=201,
        key="repos",
        msg="don't need sso auth, no need for create group",
        url="/v1/repos/hello/",
        obj=repo_obj("hello"),
    )


@pytest.mark.parametrize("path", ["/api/v1/apps/", "/anything/at/all", "/graphql"])
async def test_cors_preflight_answers_every_path(rest: Rest, path: str) -> None:
    response = await rest.client.options(path)
    assert response.status_code == 200
    assert response.content == b""
    headers = response.headers
    assert headers["content-type"] == "text/plain"
    assert headers["access-control-allow-methods"] == "DELETE, GET, PATCH, POST, PUT"
    assert headers["access-control-allow-headers"] == "access-token, content-type"
    assert headers["access-control-max-age"] == "86400"
    assert headers["access-control-allow-origin"] == "*"
    # Django's clickjacking middleware answered the preflight too.
    assert headers["x-frame-options"] == "SAMEORIGIN"


@pytest.mark.parametrize("path", ["/api/v1/nothing/", "/v1/apps/hello/procs/web/extra/", "/x"])
async def test_unknown_paths_answer_json_404(rest: Rest, path: str) -> None:
    await rest.expect(
        "GET",
        path,
        status=404,
        key="app",
        msg=f"The requested URL {path} was not found on this server.",
        url=DOCS,
    )


@pytest.mark.parametrize(
    ("method", "path", "key"),
    [
        ("PUT", "/api/v1/repos/", "repos"),
        ("DELETE", "/api/v1/apps/", "apps"),
        ("POST", "/api/v1/apps/hello/", "app"),
        ("PUT", "/api/v1/apps/hello/procs/", "procs"),
        # The two paths where LAIN crashed instead (COMPAT 9.10).
        ("PUT", "/api/v1/apps/hello/procs/web/", "proc"),
        ("POST", "/api/v1/apps/hello/procs/web/instance/1/histories/", "proc"),
        ("DELETE", "/api/v1/resources/redis/instances/", "resource"),
        ("PUT", "/api/v1/authorize/status/", "auth"),
    ],
)
async def test_wrong_method_is_json_405_before_anything(
    rest: Rest, method: str, path: str, key: str
) -> None:
    # The app does not even exist: the method is checked first.
    await rest.expect(
        method, path, status=405, key=key, msg=f"invalid http method {method}", url=DOCS
    )


async def test_root_redirects_to_the_docs(rest: Rest, base_url: str) -> None:
    response = await rest.client.get("/")
    assert response.status_code == 301
    assert response.content == b""
    # Django 1.8 made every redirect's Location absolute, from the Host asked for.
    assert response.headers["location"] == f"{base_url}/v1/docs/"
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["x-frame-options"] == "SAMEORIGIN"
    named = await rest.client.get("/", headers={"host": "console.lain.local"})
    assert named.headers["location"] == "http://console.lain.local/v1/docs/"


async def test_unexpected_errors_answer_the_fatal_template(
    rest: Rest, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(overview, "app_overviews", broken)
    response = await rest.request("GET", "/api/v1/apps/")
    assert response.status_code == 500
    assert response.json() == {
        "apps": None,
        "msg": "fatal error when getting apps:\ninternal error (RuntimeError); the log has it "
        "under this X-Request-ID\nplease contact with admin of lain\n",
        "url": DOCS,
    }
    assert "secret" not in response.text
    assert response.headers["x-request-id"]


class TestEvaluationOrder:
    """405, then 400 (on the few routes that parse first), then 404, then 503, then logic."""

    async def test_bad_body_before_unknown_app(self, rest: Rest) -> None:
        await rest.expect(
            "POST",
            "/api/v1/apps/",
            {"name": "nope"},
            status=400,
            key="app",
            msg="invalid request: should be json body with appname(string)",
            url=DOCS,
        )

    async def test_unknown_app_before_backend_down(
        self, rest: Rest, fake_scheduler: FakeScheduler
    ) -> None:
        fake_scheduler.down = True
        await rest.expect(
            "DELETE",
            "/api/v1/apps/nope/",
            status=404,
            key="app",
            msg="app with appname nope not exist, has not been reposited yet",
            url="/v1/repos/",
        )

    async def test_backend_down_before_logic(
        self, rest: Rest, fake_scheduler: FakeScheduler
    ) -> None:
        await deployed_hello(rest)
        fake_scheduler.down = True
        calls = list(fake_scheduler.calls)
        for method, path, body in [
            ("POST", "/api/v1/apps/", {"appname": "hello"}),
            ("PUT", "/api/v1/apps/hello/", None),
            ("DELETE", "/api/v1/apps/hello/", None),
            ("POST", "/api/v1/apps/hello/procs/", {"procname": "web"}),
            ("PATCH", "/api/v1/apps/hello/procs/web/", "not even an object"),
            ("DELETE", "/api/v1/apps/hello/procs/web/", None),
        ]:
            await rest.expect(
                method,
                path,
                body,
                status=503,
                key="app",
                msg="deployd is now in maintain state, please wait for a while",
                url="/v1/apps/",
            )
        assert fake_scheduler.calls == calls
