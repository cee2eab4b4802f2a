"""COMPAT 3.1-3.6: repos, roles, maintainers (auth off), versions and details."""

from __future__ import annotations

import pytest

from tests.releases import meta_version
from tests.rest_compat.helpers import (
    DOCS,
    HELLO_YAML,
    NOT_JSON,
    V1,
    V2,
    Rest,
    deploy,
    publish,
    register,
    repo_obj,
)

NOT_REPOSITED = "app with appname nope not exist, has not been reposited yet"


class TestRepos:
    async def test_list(self, rest: Rest) -> None:
        await rest.expect(
            "GET", "/api/v1/repos/", status=200, key="repos", url="/v1/repos/", obj=[]
        )
        for app in ("hello", "echo"):
            await register(rest, app)
        await rest.expect(
            "GET",
            "/api/v1/repos/",
            status=200,
            key="repos",
            url="/v1/repos/",
            obj=[repo_obj("echo"), repo_obj("hello")],
        )

    async def test_register_201_then_409(self, rest: Rest) -> None:
        await rest.expect(
            "POST",
            "/api/v1/repos/",
            {"appname": "hello", "other": "ignored"},
            status=201,
            key="repos",
            msg="don't need sso auth, no need for create group",
            url="/v1/repos/hello/",
            obj=repo_obj("hello"),
        )
        await rest.expect(
            "POST",
            "/api/v1/repos/",
            {"appname": "hello"},
            status=409,
            key="repos",
            msg="app with appname hello has already been reposited\n",
            url="/v1/repos/hello/",
        )

    @pytest.mark.parametrize("body", [NOT_JSON, [], {"name": "hello"}, {"appname": 1}])
    async def test_register_bad_body_400_uses_key_repo(self, rest: Rest, body: object) -> None:
        await rest.expect(
            "POST",
            "/api/v1/repos/",
            body,
            status=400,
            key="repo",
            msg="invalid request: should be json body with appname(string)",
            url=DOCS,
        )

    async def test_register_unusable_name_400(self, rest: Rest) -> None:
        response = await rest.request("POST", "/api/v1/repos/", {"appname": "../etc"})
        assert response.status_code == 400
        body = response.json()
        assert body["repo"] is None
        assert body["msg"].startswith("invalid request: invalid appname '../etc'")
        assert body["url"] == DOCS


class TestRepo:
    async def test_get_200(self, rest: Rest) -> None:
        await register(rest)
        await rest.expect(
            "GET",
            "/api/v1/repos/hello/",
            status=200,
            key="repo",
            url="/v1/repos/hello/",
            obj=repo_obj("hello"),
        )

    async def test_get_unknown_404(self, rest: Rest) -> None:
        await rest.expect(
            "GET", "/api/v1/repos/nope/", status=404, key="app", msg=NOT_REPOSITED, url="/v1/repos/"
        )


class TestRoles:
    async def test_caller_is_admin_with_auth_off(self, rest: Rest) -> None:
        await register(rest)
        await rest.expect(
            "GET",
            "/api/v1/repos/hello/roles/",
            status=200,
            key="role",
            url="/v1/repos/hello/roles/",
            obj={"role": "admin"},
        )

    async def test_caller_role_of_unknown_app_404(self, rest: Rest) -> None:
        await rest.expect(
            "GET",
            "/api/v1/repos/nope/roles/",
            status=404,
            key="app",
            msg=NOT_REPOSITED,
            url="/v1/repos/",
        )

    async def test_user_role_answers_json_with_auth_off(self, rest: Rest) -> None:
        # LAIN crashed here (COMPAT 3.3); with auth off everyone is an app's admin.
        await register(rest)
        await rest.expect(
            "GET",
            "/api/v1/repos/hello/roles/bob/",
            status=200,
            key="role",
            url="/v1/repos/hello/roles/bob/",
            obj={"role": "admin"},
        )

    async def test_user_role_of_unknown_app_404(self, rest: Rest) -> None:
        await rest.expect(
            "GET",
            "/api/v1/repos/nope/roles/bob/",
            status=404,
            key="role",
            msg="user bob does not exist in the maintainer list of app nope\n",
            url="/v1/repos/nope/maintainers/",
        )


class TestMaintainersWithAuthOff:
    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [
            ("GET", "/api/v1/repos/hello/maintainers/", None),
            ("POST", "/api/v1/repos/hello/maintainers/", {"username": "bob", "role": "normal"}),
            ("GET", "/api/v1/repos/hello/maintainers/bob/", None),
            ("DELETE", "/api/v1/repos/hello/maintainers/bob/", None),
            # Before the method and the app are even looked at (COMPAT 9.27).
            ("PUT", "/api/v1/repos/hello/maintainers/", None),
            ("GET", "/api/v1/repos/nope/maintainers/", None),
        ],
    )
    async def test_403_first(self, rest: Rest, method: str, path: str, body: object) -> None:
        await register(rest)
        await rest.expect(
            method,
            path,
            body,
            status=403,
            key="maintainer",
            msg="maintainer service not provided, try to open console auth first",
            url=DOCS,
        )


class TestVersions:
    async def test_newest_first_one_per_timestamp(self, rest: Rest) -> None:
        await register(rest)
        twin = meta_version(1_528_874_349, "twin")  # same second as V1
        for version in (V1, V2, twin):
            await publish(rest, "hello", version, HELLO_YAML)
        kept = max(V1, twin)  # the greater sha survives the collapse
        await rest.expect(
            "GET",
            "/api/v1/repos/hello/versions/",
            status=200,
            key="version",
            url="/v1/repos/hello/versions/",
            obj={"appname": "hello", "tags": [V2, kept], "url": "/v1/repos/hello/versions/"},
        )

    async def test_no_images_404(self, rest: Rest) -> None:
        await register(rest)
        await rest.expect(
            "GET",
            "/api/v1/repos/hello/versions/",
            status=404,
            key="version",
            msg="no avaible images for app hello:\nno images here: "
            "http://registry.lain.local/v2/hello/tags/list\nplease push images first.",
            url="/v1/repos/hello/versions/",
        )

    async def test_unknown_app_404(self, rest: Rest) -> None:
        await rest.expect(
            "GET",
            "/api/v1/repos/nope/versions/",
            status=404,
            key="app",
            msg=NOT_REPOSITED,
            url="/v1/repos/",
        )

    async def test_publish_201_then_409(self, rest: Rest) -> None:
        await register(rest)
        body = {"meta_version": V1, "lain_yaml": HELLO_YAML}
        await rest.expect(
            "POST",
            "/api/v1/repos/hello/versions/",
            body,
            status=201,
            key="version",
            msg=f"meta_version {V1} of app hello has been published",
            url="/v1/repos/hello/versions/",
            obj={"appname": "hello", "tags": [V1], "url": "/v1/repos/hello/versions/"},
        )
        await rest.expect(
            "POST",
            "/api/v1/repos/hello/versions/",
            body,
            status=409,
            key="version",
            msg=f"meta_version {V1} of app hello already exists\n",
            url="/v1/repos/hello/versions/",
        )

    @pytest.mark.parametrize(
        "body",
        [NOT_JSON, {"meta_version": V1}, {"lain_yaml": HELLO_YAML}, {"meta_version": 1}],
    )
    async def test_publish_bad_body_400(self, rest: Rest, body: object) -> None:
        await register(rest)
        await rest.expect(
            "POST",
            "/api/v1/repos/hello/versions/",
            body,
            status=400,
            key="version",
            msg="invalid request: should be json body with meta_version(string), "
            "lain_yaml(string) and optionally image(string)",
            url=DOCS,
        )

    async def test_publish_invalid_release_400(self, rest: Rest) -> None:
        await register(rest)
        await rest.expect(
            "POST",
            "/api/v1/repos/hello/versions/",
            {"meta_version": V1, "lain_yaml": HELLO_YAML.replace("hello", "other", 1)},
            status=400,
            key="version",
            msg="appname dont match: lain.yaml says other, the app is hello",
            url="/v1/repos/hello/versions/",
        )

    @pytest.mark.parametrize(
        "lain_yaml", ["appname: hello\n", "appname: hello\nbuild:\n  base: x\n"]
    )
    async def test_publish_without_procs_400_naming_the_rule(
        self, rest: Rest, lain_yaml: str
    ) -> None:
        await register(rest)
        await rest.expect(
            "POST",
            "/api/v1/repos/hello/versions/",
            {"meta_version": V1, "lain_yaml": lain_yaml},
            status=400,
            key="version",
            msg="invalid lain.yaml: a release must define at least one proc "
            "(web, worker, oneshot, service.<name> ...)",
            url="/v1/repos/hello/versions/",
        )
        listed = await rest.request("GET", "/api/v1/repos/hello/versions/")
        assert listed.status_code == 404  # no versions: nothing was stored


class TestDetails:
    async def test_before_and_after_deploy(self, rest: Rest) -> None:
        await register(rest)
        await publish(rest, "hello", V1, HELLO_YAML)
        url = "/v1/repos/hello/details/"
        await rest.expect(
            "GET",
            "/api/v1/repos/hello/details/",
            status=200,
            key="detail",
            url=url,
            obj={"appname": "hello", "giturl": "", "meta_version": "", "url": url},
        )
        await deploy(rest)
        await rest.expect(
            "GET",
            "/api/v1/repos/hello/details/",
            status=200,
            key="detail",
            url=url,
            obj={
                "appname": "hello",
                "giturl": "http://gitlab.example.com/lain/hello",
                "meta_version": V1,
                "url": url,
            },
        )

    async def test_no_images_404(self, rest: Rest) -> None:
        await register(rest)
        await rest.expect(
            "GET",
            "/api/v1/repos/hello/details/",
            status=404,
            key="detail",
            msg="no avaible images for app hello:\nno images here: "
            "http://registry.lain.local/v2/hello/tags/list\nplease push images first.",
            url="/v1/repos/hello/versions/",
        )

    async def test_wrong_method_405_key_details(self, rest: Rest) -> None:
        await rest.expect(
            "POST",
            "/api/v1/repos/hello/details/",
            status=405,
            key="details",
            msg="invalid http method POST",
            url=DOCS,
        )
