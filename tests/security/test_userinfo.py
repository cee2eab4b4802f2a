"""What leaves the console on the way to the external userinfo URL, and what an outage does.

The userinfo service is a real little HTTP server on 127.0.0.1 that records every request,
answering as LAIN SSO's /api/me/ does: 200 with the user for a good bearer token, 401 else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from resolvers import users
from tests.live import serve
from tests.security.tenants import Tenants, serve_tenants, tenant_settings

SSO_TOKENS = {"sso-good": "sso-user", "sso-other": "sso-other-user"}
VIEWER = "{ viewer { name } }"


@dataclass
class Userinfo:
    """Records what it was sent; `status` switches it into an outage."""

    received: list[str] = field(default_factory=list)
    peers: list[tuple[str, int]] = field(default_factory=list)
    status: int = 200

    async def me(self, request: Request) -> JSONResponse:
        self.received.append(request.headers.get("authorization", ""))
        assert request.client is not None
        self.peers.append((request.client.host, request.client.port))
        if self.status != 200:
            return JSONResponse({"error": "maintenance"}, status_code=self.status)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        name = SSO_TOKENS.get(token) if scheme == "Bearer" else None
        if name is None:
            return JSONResponse({"error": "invalid token"}, status_code=401)
        return JSONResponse({"name": name, "groups": []})

    def tokens(self) -> list[str]:
        return [header.partition(" ")[2] for header in self.received]


@pytest.fixture
async def userinfo() -> AsyncIterator[tuple[Userinfo, str]]:
    service = Userinfo()
    async with serve(Starlette(routes=[Route("/api/me/", service.me)])) as url:
        yield service, f"{url}/api/me/"


@pytest.fixture
async def tenants(
    userinfo: tuple[Userinfo, str],
    database_url: str,
    data_dir: Path,
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Tenants]:
    settings = tenant_settings(database_url, data_dir, auth_userinfo_url=userinfo[1])
    async with serve_tenants(settings, sessions, apps=False) as tenants:
        yield tenants


async def _own_tokens_gone_bad(tenants: Tenants) -> list[str]:
    """carol's token revoked, a fresh one expired, and a mistyped copy of dave's."""
    await users.revoke_token(tenants.system, token_id=tenants.token_ids["carol"])
    _, expired = await users.create_token(
        tenants.system, user="alice", expires_in=timedelta(microseconds=1)
    )
    return [tenants.tokens["carol"], expired, tenants.tokens["dave"][:-1] + "x", "lct_"]


async def test_own_tokens_are_never_sent_out(
    tenants: Tenants, userinfo: tuple[Userinfo, str]
) -> None:
    service, _ = userinfo
    for token in await _own_tokens_gone_bad(tenants):
        for spelling in ({"access-token": token}, {"authorization": f"Bearer {token}"}):
            graphql = await tenants.http.post("/graphql", json={"query": VIEWER}, headers=spelling)
            assert graphql.json()["data"]["viewer"]["name"] == "unknown"
            rest = await tenants.http.get("/api/v1/repos/", headers=spelling)
            assert rest.status_code == 401, rest.text
    assert service.received == []
    # A token that is not ours is asked about, with the bearer scheme.
    body = await tenants.http.post(
        "/graphql", json={"query": VIEWER}, headers={"authorization": "Bearer sso-good"}
    )
    assert body.json()["data"]["viewer"]["name"] == "sso-user"
    assert service.tokens() == ["sso-good"]


async def test_userinfo_outage_is_503_and_not_remembered(
    tenants: Tenants, userinfo: tuple[Userinfo, str]
) -> None:
    service, _ = userinfo
    headers = {"authorization": "Bearer sso-good"}
    for status in (503, 500, 429):
        service.status = status
        graphql = await tenants.http.post("/graphql", json={"query": VIEWER}, headers=headers)
        assert graphql.status_code == 503, graphql.text
        assert graphql.json()["code"] == "BACKEND_UNAVAILABLE"
        rest = await tenants.http.get("/api/v1/repos/", headers=headers)
        assert rest.status_code == 503, rest.text
    # Back up: the very same token works at once (the outage was not cached as "invalid").
    service.status = 200
    graphql = await tenants.http.post("/graphql", json={"query": VIEWER}, headers=headers)
    assert graphql.json()["data"]["viewer"]["name"] == "sso-user"
    # Our own tokens never depended on it.
    service.status = 503
    own = await tenants.graphql("alice", VIEWER)
    assert own["data"]["viewer"]["name"] == "alice"


async def test_unreachable_userinfo_is_503(
    database_url: str, data_dir: Path, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with serve(Starlette()) as gone:
        pass  # a port that answered once and is now closed
    settings = tenant_settings(database_url, data_dir, auth_userinfo_url=f"{gone}/api/me/")
    async with serve_tenants(settings, sessions, apps=False) as tenants:
        response = await tenants.http.get(
            "/api/v1/repos/", headers={"authorization": "Bearer sso-good"}
        )
        assert response.status_code == 503, response.text


async def test_one_pooled_client_asks_userinfo(
    tenants: Tenants, userinfo: tuple[Userinfo, str]
) -> None:
    service, _ = userinfo
    for token in ("sso-good", "sso-other", "sso-good-but-not"):
        await tenants.http.get("/api/v1/repos/", headers={"authorization": f"Bearer {token}"})
    assert len(service.peers) == 3
    # One connection kept open by the lifespan's client, not a new client per request.
    assert len(set(service.peers)) == 1, service.peers
