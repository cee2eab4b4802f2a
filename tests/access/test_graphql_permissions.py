"""The permission matrix at the GraphQL door: every operation, every kind of caller."""

from __future__ import annotations

import json
import logging

import pytest

from tests.access.conftest import PRINCIPALS, World
from tests.releases import V2, V3, two_proc_yaml

_YAML = json.dumps(two_proc_yaml())  # a JSON string is a GraphQL string

# (operation, GraphQL mutation or query, the payload or field to read, level)
# Levels: "signed-in" (any valid token), "member" (a maintainer), "app-admin".
OPERATIONS = [
    ("registerRepo", 'registerRepo(input: {name: "newapp"})', "member-free"),
    (
        "publishRelease",
        f'publishRelease(input: {{app: "hello", metaVersion: "{V3}", lainYaml: {_YAML}}})',
        "member",
    ),
    ("deployApp", 'deployApp(input: {name: "hello"})', "member"),
    ("promoteApp", 'promoteApp(input: {name: "hello"})', "member"),
    ("promoteProc", 'promoteProc(input: {app: "hello", proc: "web"})', "member"),
    ("startProc", 'startProc(input: {app: "hello", proc: "web", instance: 1})', "member"),
    ("deployProc", 'undeployProc(input: {app: "hello", proc: "jobs"})', "member"),
    ("scaleProc", 'scaleProc(input: {app: "hello", proc: "web", numInstances: 2})', "member"),
    ("resizeProc", 'resizeProc(input: {app: "hello", proc: "web", cpu: 2})', "member"),
    ("restartProc", 'restartProc(input: {app: "hello", proc: "web"})', "member"),
    ("stopProc", 'stopProc(input: {app: "hello", proc: "web", instance: 1})', "member"),
    ("updateApp", f'updateApp(input: {{name: "hello", metaVersion: "{V2}"}})', "member"),
    ("undeployApp", 'undeployApp(input: {name: "hello"})', "member"),
    ("addMaintainer", 'addMaintainer(input: {app: "hello", username: "carol"})', "app-admin"),
    (
        "removeMaintainer",
        'removeMaintainer(input: {app: "hello", username: "normal"})',
        "app-admin",
    ),
]


# What a permitted caller gets where the world (hello deployed, no canary rollout) makes
# the operation refuse on its own rules: the proof that the access check let it through.
PERMITTED = {"deployApp": "CONFLICT", "promoteApp": "CONFLICT", "promoteProc": "CONFLICT"}


def _expected(level: str, who: str, auth: bool) -> str | None:
    """The error code the caller should get, or None for success."""
    if not auth:
        return "FORBIDDEN" if level == "app-admin" else None
    if who in ("anonymous", "bad-token"):
        return "UNAUTHENTICATED"
    if level == "member-free" or who in ("admin", "global-admin"):
        return None
    if level == "member" and who == "normal":
        return None
    return "FORBIDDEN"


@pytest.mark.parametrize("who", PRINCIPALS)
@pytest.mark.parametrize(("name", "mutation", "level"), OPERATIONS, ids=[o[0] for o in OPERATIONS])
async def test_mutation_permissions(
    world: World, who: str, name: str, mutation: str, level: str
) -> None:
    auth: bool = world.auth  # type: ignore[attr-defined]
    before = await world.snapshot()
    body = await world.graphql(who, f"mutation {{ {mutation} {{ errors {{ code message }} }} }}")
    (payload,) = body["data"].values()
    expected = _expected(level, who, auth) or PERMITTED.get(name)
    if expected is None:
        assert payload["errors"] == [], payload
    elif expected == PERMITTED.get(name):
        assert [e["code"] for e in payload["errors"]] == [expected], payload
    else:
        assert [e["code"] for e in payload["errors"]] == [expected]
        assert await world.snapshot() == before, "a refused call changed stored state"


@pytest.mark.parametrize("who", PRINCIPALS)
async def test_reading_an_app(world: World, who: str, caplog: pytest.LogCaptureFixture) -> None:
    auth: bool = world.auth  # type: ignore[attr-defined]
    with caplog.at_level(logging.INFO):
        body = await world.graphql(who, '{ app(name: "hello") { name procs { name } } }')
    expected = _expected("member", who, auth)
    if expected is None:
        assert body["data"]["app"]["name"] == "hello"
    else:
        assert body["errors"][0]["extensions"]["code"] == expected
        # A refusal is the caller's business: one INFO line, no ERROR, no traceback.
        message = body["errors"][0]["message"]
        assert [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info] == []
        assert f"graphql client error: {expected}: {message}" in caplog.messages


@pytest.mark.parametrize("who", PRINCIPALS)
async def test_lists_are_filtered_to_the_callers_apps(world: World, who: str) -> None:
    auth: bool = world.auth  # type: ignore[attr-defined]
    body = await world.graphql(who, "{ repos { nodes { name } } apps { nodes { name } } }")
    if auth and who in ("anonymous", "bad-token"):
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        return
    visible = [] if auth and who == "outsider" else ["hello"]
    assert [n["name"] for n in body["data"]["repos"]["nodes"]] == visible
    assert [n["name"] for n in body["data"]["apps"]["nodes"]] == visible


async def test_registering_makes_the_caller_admin(world: World) -> None:
    if not world.auth:  # type: ignore[attr-defined]
        pytest.skip("with auth off nobody is recorded as a maintainer, as in LAIN")
    await world.graphql(
        "outsider", 'mutation { registerRepo(input: {name: "mine"}) { errors { code } } }'
    )
    body = await world.graphql(
        "outsider", '{ app(name: "mine") { maintainers { username role } viewerRole } }'
    )
    assert body["data"]["app"] == {
        "maintainers": [{"username": "outsider", "role": "ADMIN"}],
        "viewerRole": "ADMIN",
    }


async def test_the_last_admin_cannot_be_removed(world: World) -> None:
    if not world.auth:  # type: ignore[attr-defined]
        pytest.skip("maintainers are managed only with auth on")
    before = await world.snapshot()
    body = await world.graphql(
        "admin",
        'mutation { removeMaintainer(input: {app: "hello", username: "admin"}) '
        "{ errors { code message } } }",
    )
    assert body["data"]["removeMaintainer"]["errors"] == [
        {"code": "CONFLICT", "message": "app hello must keep at least one admin"}
    ]
    assert await world.snapshot() == before


async def test_audit_log_names_the_caller(world: World) -> None:
    auth: bool = world.auth  # type: ignore[attr-defined]
    who = "normal" if auth else "anonymous"
    await world.graphql(
        who,
        'mutation { scaleProc(input: {app: "hello", proc: "web", numInstances: 2}) '
        "{ errors { code } } }",
    )
    viewer = "admin" if auth else "anonymous"
    body = await world.graphql(
        viewer,
        '{ app(name: "hello") { auditLog(first: 1) '
        "{ nodes { user operation message metaVersion } } } }",
    )
    (entry,) = body["data"]["app"]["auditLog"]["nodes"]
    assert entry["user"] == ("normal" if auth else "unknown")
    assert entry["operation"] == "SCALE"
    assert entry["message"] == "web num_instances=2"


async def test_viewer(world: World) -> None:
    auth: bool = world.auth  # type: ignore[attr-defined]
    body = await world.graphql(
        "global-admin", "{ viewer { name isAdmin apps { nodes { name } } } }"
    )
    if auth:
        assert body["data"]["viewer"] == {
            "name": "global-admin",
            "isAdmin": True,
            "apps": {"nodes": [{"name": "hello"}]},
        }
    else:
        assert body["data"]["viewer"]["name"] == "unknown"
