"""With auth on: LAIN's 401 and 403, filtered lists, maintainers and roles (COMPAT 1.6, 3.3,
3.4, 6)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from resolvers import users
from resolvers.core import access
from resolvers.core.context import SYSTEM, OpContext, Services
from resolvers.core.events import EventBus
from server.app import create_app
from server.settings import Settings
from tests.fakes.scheduler import FakeScheduler
from tests.live import serve
from tests.rest_compat.helpers import DOCS, HELLO_YAML, V1, Rest, oplog_entries, repo_obj

MAINTAINERS = "/api/v1/repos/hello/maintainers/"


class Callers:
    def __init__(self, rest: Rest, tokens: dict[str, str]) -> None:
        self.rest = rest
        self.tokens = tokens

    def of(self, name: str) -> dict[str, str]:
        return {"access-token": self.tokens[name]}


@pytest.fixture
async def callers(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    fake_scheduler: FakeScheduler,
) -> AsyncIterator[Callers]:
    services = Services(
        sessions=sessions, scheduler=fake_scheduler, bus=EventBus(), auth_enabled=True
    )
    system = OpContext(services=services, principal=SYSTEM)
    tokens = {}
    for name in ("alice", "bob", "root"):
        await users.add_user(system, name=name, is_admin=name == "root")
        _, tokens[name] = await users.create_token(system, user=name)
    app = create_app(replace(settings, auth=True), scheduler=fake_scheduler)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        rest = Rest(client)
        response = await rest.request(
            "POST",
            "/api/v1/repos/",
            {"appname": "hello"},
            headers={"access-token": tokens["alice"]},
        )
        assert response.json()["msg"] == "create group for app hello successfully"
        yield Callers(rest, tokens)


@pytest.mark.parametrize("headers", [{}, {"access-token": "lct_bogus"}])
async def test_no_valid_token_401(callers: Callers, headers: dict[str, str]) -> None:
    for path in ("/api/v1/repos/", "/api/v1/apps/hello/"):
        await callers.rest.expect(
            "GET",
            path,
            headers=headers,
            status=401,
            key="app",
            msg="unauthorized : don't have the access to the operation",
            url=DOCS,
        )


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/apps/hello/", None),
        ("POST", "/api/v1/apps/", {"appname": "hello"}),
        ("POST", "/api/v1/repos/hello/versions/", {"meta_version": V1, "lain_yaml": HELLO_YAML}),
        ("PATCH", "/api/v1/apps/hello/procs/web/", {"num_instances": 2}),
        ("DELETE", "/api/v1/apps/hello/", None),
        ("POST", MAINTAINERS, {"username": "bob", "role": "admin"}),
    ],
)
async def test_not_a_maintainer_403(
    callers: Callers, method: str, path: str, body: dict[str, Any] | None
) -> None:
    # Mutations too: the resolvers trust only the check of this caller, on this app.
    await callers.rest.expect(
        method,
        path,
        *([] if body is None else [body]),
        headers=callers.of("bob"),
        status=403,
        key="maintainer",
        msg="forbidden : don't have the access to app hello",
        url=DOCS,
    )


async def test_a_request_asks_for_the_callers_role_once(
    callers: Callers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The route's permission check asks the database; the resolvers its handler calls take
    # that answer (OpContext.checked_app) instead of asking again.
    asked: list[str] = []
    role_on = access.role_on

    async def counted(session: AsyncSession, app: Any, username: str) -> Any:
        asked.append(f"{app.name}/{username}")
        return await role_on(session, app, username)

    monkeypatch.setattr(access, "role_on", counted)
    release = {"meta_version": V1, "lain_yaml": HELLO_YAML}
    requests: list[tuple[str, str, dict[str, Any] | None, int]] = [
        ("POST", "/api/v1/repos/hello/versions/", release, 201),
        ("GET", "/api/v1/repos/hello/", None, 200),
        ("GET", "/api/v1/repos/hello/versions/", None, 200),
        ("POST", "/api/v1/apps/", {"appname": "hello"}, 202),
        ("GET", "/api/v1/apps/hello/", None, 200),
        ("GET", "/api/v1/apps/hello/procs/", None, 200),
        ("PATCH", "/api/v1/apps/hello/procs/web/", {"num_instances": 2}, 202),
        ("GET", "/api/v1/apps/hello/procs/web/", None, 200),
        ("GET", "/api/v1/repos/hello/roles/", None, 200),
        ("GET", "/api/v1/repos/hello/maintainers/", None, 200),
        ("POST", "/api/v1/repos/hello/maintainers/", {"username": "bob", "role": "normal"}, 200),
        ("DELETE", "/api/v1/repos/hello/maintainers/bob/", None, 204),
        ("GET", "/api/v1/repos/hello/details/", None, 200),
        ("GET", "/api/v1/oplogs/hello/", None, 200),
        ("GET", "/api/v1/resources/hello/instances/", None, 200),
        ("DELETE", "/api/v1/apps/hello/procs/web/", None, 202),
        ("DELETE", "/api/v1/apps/hello/", None, 202),
    ]
    for method, path, body, status in requests:
        asked.clear()
        content = None if body is None else json.dumps(body).encode()
        response = await callers.rest.client.request(
            method, path, content=content, headers=callers.of("alice")
        )
        assert response.status_code == status, (method, path, response.text)
        assert asked == ["hello/alice"], (method, path)


async def test_lists_show_what_the_caller_may_touch(callers: Callers) -> None:
    for who, repos in (("bob", []), ("alice", [repo_obj("hello")]), ("root", [repo_obj("hello")])):
        await callers.rest.expect(
            "GET",
            "/api/v1/repos/",
            headers=callers.of(who),
            status=200,
            key="repos",
            url="/v1/repos/",
            obj=repos,
        )


async def test_auth_status_opened_and_the_operator_recorded(callers: Callers) -> None:
    await callers.rest.expect(
        "GET",
        "/api/v1/authorize/status/",
        status=200,
        key="auth",
        msg="get auth status success",
        url="/v1/authorize/status/",
        obj={"status": "opened"},
    )
    # With auth on the oplog needs read access (LAIN's was open; see the README).
    oplog = (
        await callers.rest.request("GET", "/api/v1/oplogs/hello/", headers=callers.of("alice"))
    ).json()["oplog"]
    assert [e["fields"]["user"] for e in json.loads(oplog)] == ["alice"]


def _maintainer(username: str, role: str) -> dict[str, str]:
    return {
        "appname": "hello",
        "username": username,
        "role": role,
        "url": "/v1/repos/hello/maintainers/",
    }


async def test_maintainers(callers: Callers) -> None:
    rest, alice, bob = callers.rest, callers.of("alice"), callers.of("bob")
    await rest.expect(
        "GET",
        MAINTAINERS,
        headers=alice,
        status=200,
        key="maintainers",
        url="/v1/repos/hello/maintainers/",
        obj=[_maintainer("alice", "admin")],
    )
    await rest.expect(
        "POST",
        MAINTAINERS,
        {"username": "bob"},
        headers=alice,
        status=400,
        key="maintainers",
        msg="invalid request: should be json body with username(string) and role(string)",
        url=DOCS,
    )
    await rest.expect(
        "POST",
        MAINTAINERS,
        {"username": "bob", "role": "owner"},
        headers=alice,
        status=500,
        key="maintainer",
        msg="error adding maintainer of app hello : \nfail add group member bob to app hello : "
        '"unknown role"\n',
        url=DOCS,
    )
    await rest.expect(
        "POST",
        MAINTAINERS,
        {"username": "bob", "role": ""},
        headers=alice,
        status=200,
        key="maintainer",
        url="/v1/repos/hello/maintainers/",
        obj=_maintainer("bob", "normal"),
    )
    await rest.expect(
        "POST",
        MAINTAINERS,
        {"username": "carol", "role": "normal"},
        headers=bob,
        status=500,
        key="maintainer",
        msg="error adding maintainer of app hello : \nfail add group member carol to app hello"
        ' : "Not group admin"\n',
        url=DOCS,
    )
    await rest.expect(
        "GET",
        f"{MAINTAINERS}bob/",
        headers=bob,
        status=200,
        key="maintainer",
        url="/v1/repos/hello/maintainers/bob/",
        obj=_maintainer("bob", "normal"),
    )
    await rest.expect(
        "GET",
        f"{MAINTAINERS}carol/",
        headers=bob,
        status=404,
        key="maintainer",
        msg="user carol does not exist in the app hello\n",
        url="/v1/repos/hello/maintainers/",
    )
    await rest.expect(
        "PUT",
        MAINTAINERS,
        headers=bob,
        status=405,
        key="maintainer",
        msg="invalid http method PUT",
        url=DOCS,
    )
    await rest.expect(
        "DELETE",
        f"{MAINTAINERS}carol/",
        headers=alice,
        status=500,
        key="maintainer",
        msg="error deleting maintainer of app hello : \nfail delete group member carol from "
        'app hello : "no such member"\n',
        url=DOCS,
    )
    await rest.expect(
        "DELETE", f"{MAINTAINERS}bob/", headers=alice, status=204, key="maintainer", url=""
    )


async def test_roles(callers: Callers) -> None:
    rest = callers.rest
    await rest.expect(
        "GET",
        "/api/v1/repos/hello/roles/",
        headers=callers.of("alice"),
        status=200,
        key="role",
        url="/v1/repos/hello/roles/",
        obj={"role": "admin"},
    )
    # roles/<user>/ asked for no token in LAIN; with auth on it needs read access here.
    await rest.expect(
        "GET",
        "/api/v1/repos/hello/roles/alice/",
        headers=callers.of("alice"),
        status=200,
        key="role",
        url="/v1/repos/hello/roles/alice/",
        obj={"role": "admin"},
    )
    await rest.expect(
        "GET",
        "/api/v1/repos/hello/roles/carol/",
        headers=callers.of("alice"),
        status=404,
        key="role",
        msg="user carol does not exist in the maintainer list of app hello\n",
        url="/v1/repos/hello/maintainers/",
    )


async def test_maintainer_changes_are_audited_but_not_in_lains_oplog(callers: Callers) -> None:
    """LAIN's maintainers were SSO group members, never in its oplog; our audit log keeps
    their changes (GraphQL auditLog), and the REST oplog leaves them out."""
    rest, alice = callers.rest, callers.of("alice")
    for method, path, body in [
        ("POST", MAINTAINERS, {"username": "bob", "role": "normal"}),
        ("DELETE", f"{MAINTAINERS}bob/", None),
    ]:
        response = await rest.request(method, path, body, headers=alice)
        assert response.status_code in (200, 204), response.text
    entries = await oplog_entries(rest, headers=alice)
    assert [(e["fields"]["op"], e["fields"]["user"]) for e in entries] == [("REPOSIT", "alice")]
    query = '{ app(name: "hello") { auditLog(first: 10) { nodes { user operation message } } } }'
    response = await rest.client.post("/graphql", json={"query": query}, headers=alice)
    assert response.json()["data"]["app"]["auditLog"]["nodes"] == [
        {"user": "alice", "operation": "REMOVE_MAINTAINER", "message": "bob"},
        {"user": "alice", "operation": "ADD_MAINTAINER", "message": "bob as normal"},
        {"user": "alice", "operation": "REPOSIT", "message": ""},
    ]
