"""Tokens: stored as digests, revocable, expiring; external userinfo; websockets."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from websockets.exceptions import ConnectionClosed

from resolvers import users
from resolvers.core.context import ANONYMOUS, SYSTEM, OpContext, Principal, Services
from resolvers.core.errors import Forbidden
from resolvers.core.events import EventBus
from server.app import create_app
from server.auth import Authenticator
from server.settings import load_settings
from tests.access.conftest import World
from tests.fakes.scheduler import FakeScheduler
from tests.live import serve, subscribe


def _services(sessions: async_sessionmaker[AsyncSession], *, auth: bool = True) -> Services:
    return Services(sessions=sessions, scheduler=FakeScheduler(), bus=EventBus(), auth_enabled=auth)


@pytest.fixture
async def system(sessions: async_sessionmaker[AsyncSession]) -> OpContext:
    ctx = OpContext(services=_services(sessions), principal=SYSTEM)
    await users.add_user(ctx, name="alice")
    return ctx


async def test_tokens_are_stored_only_as_digests(
    system: OpContext, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, secret = await users.create_token(system, user="alice")
    async with sessions() as session:
        rows = (await session.execute(text("SELECT * FROM api_tokens"))).all()
    dumped = json.dumps([[str(v) for v in row] for row in rows])
    assert secret not in dumped
    assert secret[len(users.TOKEN_PREFIX) :] not in dumped
    assert users.hash_token(secret) in dumped


async def test_revoked_and_expired_tokens_stop_working(system: OpContext) -> None:
    authenticator = Authenticator(system.services)
    _, kept = await users.create_token(system, user="alice")
    revoked_view, revoked = await users.create_token(system, user="alice")
    _, expired = await users.create_token(
        system, user="alice", expires_in=timedelta(microseconds=1)
    )
    await users.revoke_token(system, token_id=revoked_view.id)
    assert await authenticator.principal(kept) == Principal("alice")
    assert await authenticator.principal(revoked) is None
    assert await authenticator.principal(expired) is None
    assert await authenticator.principal(None) == ANONYMOUS


async def test_only_global_admins_manage_tokens(system: OpContext) -> None:
    alice = OpContext(services=system.services, principal=Principal("alice"))
    with pytest.raises(Forbidden):
        await users.create_token(alice, user="alice")


async def test_auth_off_makes_everyone_the_anonymous_operator(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    authenticator = Authenticator(_services(sessions, auth=False))
    assert await authenticator.principal("anything") == ANONYMOUS


async def test_external_userinfo_is_asked_with_bearer_and_cached(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    calls: list[str] = []

    def userinfo(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers["authorization"])
        if request.headers["authorization"] == "Bearer sso-good":
            return httpx.Response(200, json={"name": "bob", "groups": ["lain", "x"]})
        return httpx.Response(401, json={"error": "bad token"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(userinfo)) as http:
        authenticator = Authenticator(
            _services(sessions), userinfo_url="https://sso.example/api/me/", http=http
        )
        assert await authenticator.principal("sso-good") == Principal("bob", is_admin=True)
        assert await authenticator.principal("sso-good") == Principal("bob", is_admin=True)
        assert await authenticator.principal("sso-bad") is None
    assert calls == ["Bearer sso-good", "Bearer sso-bad"]


async def test_tokens_never_reach_the_logs(world: World, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        for who in ("normal", "bad-token"):
            await world.graphql(who, '{ app(name: "hello") { name } }')
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for token in world.tokens.values():
        if token is not None:
            assert token not in logged


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_websocket_with_a_bad_token_is_closed_4401(
    database_url: str,
    data_dir: Path,
    system: OpContext,
    caplog: pytest.LogCaptureFixture,
    protocol: str,
) -> None:
    _, good = await users.create_token(system, user="alice")
    settings = replace(load_settings({}), data_dir=data_dir, database_url=database_url, auth=True)
    query = 'subscription { appEvents(name: "hello") { cursor } }'
    async with serve(create_app(settings, scheduler=FakeScheduler())) as base_url:
        bad = {"accessToken": "lct_bad"}
        caplog.set_level(logging.INFO)
        with pytest.raises(ConnectionClosed) as closed:
            async with subscribe(base_url, query, protocol=protocol, init_payload=bad) as sub:
                await sub.receive()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4401
        # Rejected once, in one INFO line, without a traceback.
        assert [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info] == []
        rejections = [r for r in caplog.records if "rejected" in r.getMessage()]
        assert [(r.levelname, r.getMessage()) for r in rejections] == [
            ("INFO", "websocket rejected with 4401: a bad token")
        ]
        # A valid token is accepted; alice is no maintainer of the (missing) app, so the
        # subscription itself is refused, not the connection.
        async with subscribe(base_url, query, init_payload={"accessToken": good}) as sub:
            message = await sub.receive()
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "NOT_FOUND"
