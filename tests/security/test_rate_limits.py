"""Escaping the rate limiter by changing what the caller controls: tokens, spellings, headers.

The console runs as `lain-console serve` runs it (its uvicorn options), so that uvicorn's
proxy header handling is the one in production.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.listen import uvicorn_options
from tests.security.tenants import Tenants, serve_tenants, tenant_settings

# Small buckets: refilling one request takes 20 s (failures: 30 s), far longer than a test.
PER_MINUTE = 3
FAILURES_PER_MINUTE = 2
ATTEMPTS = 8


async def _serve(
    database_url: str, data_dir: Path, sessions: async_sessionmaker[AsyncSession], **extra: Any
) -> AsyncIterator[Tenants]:
    settings = tenant_settings(
        database_url,
        data_dir,
        rate_limit_per_minute=PER_MINUTE,
        auth_failures_per_minute=FAILURES_PER_MINUTE,
        **extra,
    )
    async with serve_tenants(settings, sessions, apps=False, **uvicorn_options(settings)) as t:
        yield t


@pytest.fixture
async def tenants(
    database_url: str, data_dir: Path, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Tenants]:
    async for tenants in _serve(database_url, data_dir, sessions):
        yield tenants


@pytest.fixture
async def behind_proxy(
    database_url: str, data_dir: Path, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Tenants]:
    async for tenants in _serve(
        database_url, data_dir, sessions, forwarded_allow_ips=("127.0.0.1",)
    ):
        yield tenants


async def _statuses(tenants: Tenants, headers: list[dict[str, str]]) -> list[int]:
    statuses = []
    for header in headers:
        response = await tenants.http.get("/api/v1/repos/", headers=header)
        statuses.append(response.status_code)
    return statuses


async def test_a_fresh_bogus_token_each_time_is_limited(tenants: Tenants) -> None:
    guesses = [{"access-token": f"lct_guess-{n}"} for n in range(ATTEMPTS // 2)]
    guesses += [{"authorization": f"Bearer sso-guess-{n}"} for n in range(ATTEMPTS // 2)]
    statuses = await _statuses(tenants, guesses)
    assert statuses[:FAILURES_PER_MINUTE] == [401] * FAILURES_PER_MINUTE
    assert set(statuses[FAILURES_PER_MINUTE:]) == {429}, statuses
    # Refused unread: even a valid token from that address waits (token guessing is bounded
    # whatever the guess).
    refused = await tenants.http.get("/api/v1/repos/", headers=tenants.headers("alice"))
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0


async def test_rotating_x_forwarded_for_is_limited(tenants: Tenants) -> None:
    rotated = [{"x-forwarded-for": f"203.0.113.{n}"} for n in range(ATTEMPTS)]
    statuses = await _statuses(tenants, rotated)
    assert statuses[:PER_MINUTE] == [401] * PER_MINUTE  # anonymous, auth on
    assert set(statuses[PER_MINUTE:]) == {429}, statuses


async def test_spellings_of_one_token_share_one_bucket(tenants: Tenants) -> None:
    token = tenants.tokens["alice"]
    spellings = [
        {"access-token": token},
        {"authorization": f"Bearer {token}"},
        {"authorization": f"bearer {token}"},
        {"authorization": f"BeArEr {token}"},
        {"authorization": f"BEARER  {token}"},
    ]
    statuses = await _statuses(tenants, (spellings * 2)[:ATTEMPTS])
    assert statuses[:PER_MINUTE] == [200] * PER_MINUTE
    assert set(statuses[PER_MINUTE:]) == {429}, statuses
    # The bucket is alice's, not the address's: bob, from the same address, is served.
    assert (await _statuses(tenants, [tenants.headers("bob")])) == [200]


async def test_a_trusted_proxy_forwards_addresses(behind_proxy: Tenants) -> None:
    """With the proxy listed, each forwarded address has a bucket of its own."""
    one = [{"x-forwarded-for": "203.0.113.7"}] * (PER_MINUTE + 1)
    statuses = await _statuses(behind_proxy, one)
    assert statuses == [401] * PER_MINUTE + [429]
    other = await _statuses(behind_proxy, [{"x-forwarded-for": "203.0.113.8"}])
    assert other == [401]
