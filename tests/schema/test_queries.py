from __future__ import annotations

from tests.releases import V1, V2, two_proc_yaml
from tests.schema.conftest import GraphQLClient
from tests.schema.test_mutations import DEPLOY, PUBLISH, REGISTER


async def test_repos_connection_pages(gql: GraphQLClient) -> None:
    for name in ["b", "a", "c"]:
        await gql(REGISTER, name=name)
    first = await gql("{ repos(first: 2) { nodes { name } pageInfo { hasNextPage endCursor } } }")
    page = first["data"]["repos"]
    assert [n["name"] for n in page["nodes"]] == ["a", "b"]
    assert page["pageInfo"]["hasNextPage"] is True
    rest = await gql(
        "query($after: String) { repos(first: 2, after: $after) { edges { node { name } } } }",
        after=page["pageInfo"]["endCursor"],
    )
    assert rest["data"]["repos"]["edges"] == [{"node": {"name": "c"}}]


async def test_repo_with_releases_and_app(gql: GraphQLClient) -> None:
    await gql(REGISTER, name="hello")
    await gql(PUBLISH, app="hello", v=V1, yaml=two_proc_yaml())
    await gql(PUBLISH, app="hello", v=V2, yaml=two_proc_yaml())
    query = '{ repo(name: "hello") { name app { name } releases { nodes { metaVersion } } } }'
    before = (await gql(query))["data"]["repo"]
    assert before["app"] is None
    assert [r["metaVersion"] for r in before["releases"]["nodes"]] == [V2, V1]
    await gql(DEPLOY, name="hello")
    after = (await gql(query))["data"]["repo"]
    assert after["app"] == {"name": "hello"}


async def test_unknown_objects_are_null(gql: GraphQLClient) -> None:
    result = await gql('{ repo(name: "x") { name } app(name: "x") { name } node(id: "zz") { id } }')
    assert result["data"] == {"repo": None, "app": None, "node": None}


async def test_node_refetches_by_global_id(gql: GraphQLClient) -> None:
    await gql(REGISTER, name="hello")
    await gql(PUBLISH, app="hello", v=V1, yaml=two_proc_yaml())
    await gql(DEPLOY, name="hello")
    app = (await gql('{ app(name: "hello") { id procs { id } release { id } } }'))["data"]["app"]
    for global_id, typename in [
        (app["id"], "App"),
        (app["procs"][0]["id"], "Proc"),
        (app["release"]["id"], "Release"),
    ]:
        node = await gql("query($id: ID!) { node(id: $id) { __typename id } }", id=global_id)
        assert node["data"]["node"] == {"__typename": typename, "id": global_id}


async def test_apps_filters_by_type_and_shows_running_state(gql: GraphQLClient) -> None:
    await gql(REGISTER, name="hello")
    await gql(PUBLISH, app="hello", v=V1, yaml=two_proc_yaml())
    await gql(DEPLOY, name="hello")
    result = await gql(
        "{ apps(apptype: APP) { nodes { name apptype procs { name instances { status } } } } }"
    )
    assert result["data"]["apps"]["nodes"] == [
        {
            "name": "hello",
            "apptype": "APP",
            "procs": [
                {"name": "web", "instances": [{"status": "RUNNING"}]},
                {"name": "jobs", "instances": [{"status": "RUNNING"}, {"status": "RUNNING"}]},
            ],
        }
    ]
    assert (await gql("{ apps(apptype: RESOURCE) { nodes { name } } }"))["data"]["apps"][
        "nodes"
    ] == []


async def test_too_many_aliases_are_refused(gql: GraphQLClient) -> None:
    aliased = " ".join(f"a{i}: repos {{ nodes {{ name }} }}" for i in range(31))
    result = await gql("{ " + aliased + " }")
    assert "aliases" in result["errors"][0]["message"]
    assert result.get("data") is None


async def test_too_many_tokens_are_refused(gql: GraphQLClient) -> None:
    fields = " ".join("name createdAt" for _ in range(1100))
    result = await gql("{ repos { nodes { " + fields + " } } }")
    assert "token" in result["errors"][0]["message"].lower()


async def test_bad_cursor_is_a_coded_error(gql: GraphQLClient) -> None:
    result = await gql('{ repos(after: "bogus") { nodes { name } } }')
    (error,) = result["errors"]
    assert error["extensions"] == {"code": "INVALID", "field": "after"}


async def test_viewer_is_anonymous_with_auth_off(gql: GraphQLClient) -> None:
    assert (await gql("{ viewer { name isAdmin } }"))["data"] == {
        "viewer": {"name": "unknown", "isAdmin": False}
    }
