"""A subscription opened while allowed must not outlive the permission it was opened with."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from resolvers import users
from tests.live import Subscriber, subscribe
from tests.security.tenants import Tenants, serve_tenants, tenant_settings

EVENTS = 'subscription { appEvents(name: "b1") { cursor kind app { name } } }'
SCALE = """mutation($n: Int!) {
  scaleProc(input: {app: "b1", proc: "worker", numInstances: $n}) { errors { code message } }
}"""
REMOVE_CAROL = """mutation {
  removeMaintainer(input: {app: "b1", username: "carol"}) { errors { code message } }
}"""
RECHECK_SECONDS = 0.2
DEADLINE = 20.0


@pytest.fixture
async def tenants(
    database_url: str, data_dir: Path, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Tenants]:
    settings = tenant_settings(database_url, data_dir, subscription_recheck_seconds=RECHECK_SECONDS)
    async with serve_tenants(settings, sessions) as tenants:
        yield tenants


async def _carol_sees_events(tenants: Tenants, sub: Subscriber) -> None:
    """The subscription works while carol may read b1 (so what follows is a change)."""
    # The server may start the subscription only after a first scale has published: scale
    # again (2, 4, 2, ...; never 3, which the tests scale to next) until an event arrives.
    async with asyncio.timeout(DEADLINE):
        count = 2
        while True:
            await tenants.mutate("bob", SCALE, n=count)
            try:
                async with asyncio.timeout(2.0):
                    event = await sub.next_event()
                break
            except TimeoutError:
                count = 6 - count
    assert event["appEvents"]["app"]["name"] == "b1"
    # Drain what the scale published: the fake scheduler has published it all by the time
    # the mutation answers, so a quiet spell means delivery is done.
    while True:
        try:
            async with asyncio.timeout(2.0):
                await sub.next_event()
        except TimeoutError:
            return


async def _end(sub: Subscriber, operation: str = "1") -> list[dict[str, Any]]:
    """The errors the subscription ends with; fails on any event delivered instead."""
    async with asyncio.timeout(DEADLINE):
        message = await sub.receive()
        while message["type"] == "complete" or message.get("id") != operation:
            message = await sub.receive()
    assert message["type"] in ("next", "error"), message
    payload = message["payload"]
    errors: list[dict[str, Any]] = payload if message["type"] == "error" else payload["errors"]
    assert message["type"] == "error" or payload.get("data") is None, message
    return errors


def _codes(errors: list[dict[str, Any]]) -> list[str]:
    return [e["extensions"]["code"] for e in errors]


async def test_removed_maintainer_stops_receiving_even_without_events(tenants: Tenants) -> None:
    init = {"accessToken": tenants.tokens["carol"]}
    async with subscribe(tenants.url, EVENTS, init_payload=init) as sub:
        await _carol_sees_events(tenants, sub)
        await tenants.mutate("bob", REMOVE_CAROL)
        # No event comes: the periodic re-check alone must end it.
        assert _codes(await _end(sub)) == ["FORBIDDEN"]


async def test_removed_maintainer_gets_no_further_event(tenants: Tenants) -> None:
    init = {"accessToken": tenants.tokens["carol"]}
    async with subscribe(tenants.url, EVENTS, init_payload=init) as sub:
        await _carol_sees_events(tenants, sub)
        await tenants.mutate("bob", REMOVE_CAROL)
        await tenants.mutate("bob", SCALE, n=3)
        assert _codes(await _end(sub)) == ["FORBIDDEN"]


async def test_revoked_token_stops_receiving(tenants: Tenants) -> None:
    init = {"accessToken": tenants.tokens["carol"]}
    async with subscribe(tenants.url, EVENTS, init_payload=init) as sub:
        await _carol_sees_events(tenants, sub)
        # What `lain-console token revoke` does.
        await users.revoke_token(tenants.system, token_id=tenants.token_ids["carol"])
        await tenants.mutate("bob", SCALE, n=3)
        assert _codes(await _end(sub)) == ["FORBIDDEN"]
        # Nothing else on that socket acts as carol any more.
        await sub.ws.send(
            '{"id": "2", "type": "subscribe", "payload": {"query": '
            '"subscription { appEvents(name: \\"b1\\") { cursor } }"}}'
        )
        assert _codes(await _end(sub, "2")) in (["UNAUTHENTICATED"], ["FORBIDDEN"])


RESOURCE_EVENTS = (
    'subscription { appEvents(name: "b1") { cursor app { usesResources { instance { name } } } } }'
)


async def _next_payload(sub: Subscriber) -> dict[str, Any]:
    """The next event's whole payload, errors included."""
    while True:
        message = await sub.receive()
        if message["type"] == "next" and message.get("id") == "1":
            payload: dict[str, Any] = message["payload"]
            return payload


async def test_one_document_renders_for_each_caller_what_they_may_read(tenants: Tenants) -> None:
    # Both sockets run the same document with the same variables: the console renders each
    # event once per caller, never one caller's rendering for the other. bob maintains the
    # redis instance b1 uses; carol maintains b1 but not the instance.
    bob_init = {"accessToken": tenants.tokens["bob"]}
    carol_init = {"accessToken": tenants.tokens["carol"]}
    async with (
        subscribe(tenants.url, RESOURCE_EVENTS, init_payload=bob_init) as bob,
        subscribe(tenants.url, RESOURCE_EVENTS, init_payload=carol_init) as carol,
    ):
        payloads: dict[str, dict[str, Any]] = {}
        async with asyncio.timeout(DEADLINE):
            count = 2
            while len(payloads) < 2:
                await tenants.mutate("bob", SCALE, n=count)
                count = 6 - count
                for who, sub in (("bob", bob), ("carol", carol)):
                    if who in payloads:
                        continue
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(2.0):
                            payloads[who] = await _next_payload(sub)
    assert "errors" not in payloads["bob"], payloads["bob"]
    (use,) = payloads["bob"]["data"]["appEvents"]["app"]["usesResources"]
    assert use == {"instance": {"name": "resource.redis.b1"}}
    (use,) = payloads["carol"]["data"]["appEvents"]["app"]["usesResources"]
    assert use == {"instance": None}
    assert _codes(payloads["carol"]["errors"]) == ["FORBIDDEN"]
    assert payloads["carol"]["errors"][0]["path"] == [
        "appEvents",
        "app",
        "usesResources",
        0,
        "instance",
    ]
