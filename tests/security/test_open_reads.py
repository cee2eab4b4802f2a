"""What a stranger learns without reading rights: the audit log, roles and the schema.

With auth on each needs a caller who may read (LAIN's oplog and roles/<user>/ were open to
anyone: a deliberate deviation, in the README); with auth off they stay as LAIN had them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.security.tenants import Tenants, serve_tenants, tenant_settings

INTROSPECTION = "{ __schema { mutationType { fields { name } } } }"


@pytest.fixture(params=[True, False], ids=["auth-on", "auth-off"])
async def tenants(
    request: pytest.FixtureRequest,
    database_url: str,
    data_dir: Path,
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Tenants]:
    settings = tenant_settings(database_url, data_dir, auth=request.param)
    async with serve_tenants(settings, sessions) as tenants:
        yield tenants


def _auth(tenants: Tenants) -> bool:
    return tenants.services.auth_enabled


@pytest.mark.parametrize("who", [None, "mallory"])
async def test_oplog_of_another_tenant(tenants: Tenants, who: str | None) -> None:
    response = await tenants.rest(who, "GET", "/api/v1/oplogs/s2/")
    if not _auth(tenants):
        assert response.status_code == 200
        assert [e["fields"]["op"] for e in json.loads(response.json()["oplog"])][-1] == "REPOSIT"
        return
    assert response.status_code == (401 if who is None else 403), response.text
    assert "oplog" not in response.json()
    owner = await tenants.rest("alice", "GET", "/api/v1/oplogs/s2/")
    assert owner.status_code == 200
    assert {e["fields"]["user"] for e in json.loads(owner.json()["oplog"])} == {"alice"}


@pytest.mark.parametrize("who", [None, "mallory"])
async def test_roles_of_another_tenant(tenants: Tenants, who: str | None) -> None:
    response = await tenants.rest(who, "GET", "/api/v1/repos/s2/roles/alice/")
    if not _auth(tenants):
        assert response.status_code == 200
        assert response.json()["role"] == {"role": "admin"}
        return
    assert response.status_code == (401 if who is None else 403), response.text
    assert "role" not in response.json()
    owner = await tenants.rest("bob", "GET", "/api/v1/repos/b1/roles/carol/")
    assert owner.json()["role"] == {"role": "normal"}


async def test_anonymous_introspection(tenants: Tenants) -> None:
    body = await tenants.graphql(None, INTROSPECTION)
    if _auth(tenants):
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
        # __typename is not introspection of the schema: it stays open.
        assert (await tenants.graphql(None, "{ __typename }"))["data"] == {"__typename": "Query"}
    else:
        assert body["data"]["__schema"]["mutationType"]["fields"]
    signed_in = await tenants.graphql("mallory", INTROSPECTION)
    assert signed_in["data"]["__schema"]["mutationType"]["fields"]
