"""Notify subscribers are not an SSRF tool (issue 12): with auth on only a global admin
manages them, and the console POSTs only to public addresses, checked when a URL is added
and again before each send, unless an operator allowed the network."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tests.live import serve
from tests.rest_compat.helpers import HELLO_YAML, V1, V2
from tests.security.served import fake_console
from tests.security.tenants import serve_tenants, tenant_settings

NOTIFY = "/api/v1/notify/imagepush/"
PUSH_BODY = {"authors": ["alice@example.com"], "commits": [{"id": "6f8a0c1", "message": "m"}]}


@contextlib.asynccontextmanager
async def _hook() -> AsyncIterator[tuple[str, asyncio.Queue[str]]]:
    """A subscriber on a loopback port; `/redirect` sends the caller on to `/hook`."""
    received: asyncio.Queue[str] = asyncio.Queue()

    async def hook(request: Request) -> Response:
        received.put_nowait(request.url.path)
        return Response(b"")

    async def redirect(request: Request) -> Response:
        received.put_nowait(request.url.path)
        return RedirectResponse("/hook", status_code=307)

    routes = [
        Route("/hook", hook, methods=["POST"]),
        Route("/redirect", redirect, methods=["POST"]),
    ]
    async with serve(Starlette(routes=routes)) as url:
        yield url, received


async def _call(
    client: httpx.AsyncClient, method: str, path: str, token: str | None, body: Any = None
) -> httpx.Response:
    headers = {"access-token": token} if token else {}
    return await client.request(method, path, json=body, headers=headers)


async def _pushable_hello(client: httpx.AsyncClient, token: str | None) -> None:
    """hello deployed at V1 with a giturl, V2 published: a push announces V2."""
    steps = [
        ("/api/v1/repos/", {"appname": "hello"}),
        ("/api/v1/repos/hello/versions/", {"meta_version": V1, "lain_yaml": HELLO_YAML}),
        ("/api/v1/apps/", {"appname": "hello"}),
        ("/api/v1/repos/hello/versions/", {"meta_version": V2, "lain_yaml": HELLO_YAML}),
    ]
    for path, body in steps:
        response = await _call(client, "POST", path, token, body)
        assert response.status_code in (201, 202), response.text


async def test_only_a_global_admin_manages_subscribers(
    database_url: str, data_dir: Path, sessions: async_sessionmaker[AsyncSession]
) -> None:
    settings = tenant_settings(database_url, data_dir)
    async with serve_tenants(settings, sessions, apps=False) as tenants:
        client, tokens = tenants.http, tenants.tokens
        body = {"notify_url": "https://example.com/hook"}
        for method in ("GET", "POST", "DELETE"):
            anonymous = await _call(client, method, NOTIFY, None, body)
            assert anonymous.status_code == 401, anonymous.text
            user = await _call(client, method, NOTIFY, tokens["alice"], body)
            assert user.status_code == 403, user.text
            assert "only a global admin may manage notify subscribers" in user.json()["msg"]
        for method, expected in (("POST", body["notify_url"]), ("GET", [body["notify_url"]])):
            admin = await _call(client, method, NOTIFY, tokens["root"], body)
            assert admin.status_code == 200, admin.text
            assert admin.json()["notify"] == expected
        assert (await _call(client, "DELETE", NOTIFY, tokens["root"], body)).status_code == 200


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "resolves to 169.254.169.254"),
        ("http://127.0.0.1:8000/api/v1/repos/", "resolves to 127.0.0.1"),
        ("http://localhost/", "which is not a public address"),
        ("http://[::1]/", "resolves to ::1"),
        ("http://[::ffff:10.0.0.1]/", "which is not a public address"),
        ("http://10.1.2.3/", "resolves to 10.1.2.3"),
        ("http://192.168.0.1/", "resolves to 192.168.0.1"),
        ("http://100.64.0.1/", "resolves to 100.64.0.1"),
        ("http://224.0.0.1/", "resolves to 224.0.0.1"),
        ("http://0.0.0.0:8000/", "resolves to 0.0.0.0"),
        ("http://2130706433/", "resolves to 127.0.0.1"),
        ("ftp://example.com/", "must be an http(s) URL"),
        ("file:///etc/passwd", "must be an http(s) URL"),
        ("not a url", "must be an http(s) URL"),
    ],
)
async def test_internal_addresses_are_refused(
    database_url: str,
    data_dir: Path,
    sessions: async_sessionmaker[AsyncSession],
    url: str,
    reason: str,
) -> None:
    settings = tenant_settings(database_url, data_dir)
    async with serve_tenants(settings, sessions, apps=False) as tenants:
        client, tokens = tenants.http, tenants.tokens
        response = await _call(client, "POST", NOTIFY, tokens["root"], {"notify_url": url})
        assert response.status_code == 400, response.text
        assert reason in response.json()["msg"]
        listed = await _call(client, "GET", NOTIFY, tokens["root"])
        assert listed.json()["notify"] == []


async def test_a_subscriber_stored_earlier_is_checked_again_at_send_time(
    database_url: str, data_dir: Path, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with _hook() as (hook_url, received):
        # Stored while auth was off, as LAIN allowed: an internal address.
        async with fake_console(database_url, data_dir) as client:
            await _pushable_hello(client, None)
            body = {"notify_url": f"{hook_url}/hook"}
            assert (await _call(client, "POST", NOTIFY, None, body)).status_code == 200
        settings = tenant_settings(database_url, data_dir)
        async with serve_tenants(settings, sessions, apps=False) as tenants:
            response = await tenants.rest(
                "root", "POST", "/api/v1/repos/hello/push/", json=PUSH_BODY
            )
            assert response.status_code == 200, response.text
        # The push answers once every subscriber was dealt with: nothing reached the hook.
        assert received.empty()


async def test_an_allowed_network_is_sent_to_without_following_redirects(
    database_url: str, data_dir: Path, sessions: async_sessionmaker[AsyncSession]
) -> None:
    allowed = (ipaddress.ip_network("127.0.0.0/8"),)
    settings = tenant_settings(database_url, data_dir, notify_allow_networks=allowed)
    async with (
        _hook() as (hook_url, received),
        serve_tenants(settings, sessions, apps=False) as tenants,
    ):
        client, tokens = tenants.http, tenants.tokens
        await _pushable_hello(client, tokens["root"])
        for path in ("/redirect", "/hook"):
            body = {"notify_url": f"{hook_url}{path}"}
            response = await _call(client, "POST", NOTIFY, tokens["root"], body)
            assert response.status_code == 200, response.text
        response = await _call(
            client, "POST", "/api/v1/repos/hello/push/", tokens["root"], PUSH_BODY
        )
        assert response.status_code == 200, response.text
        told = sorted([received.get_nowait() for _ in range(received.qsize())])
        assert told == ["/hook", "/redirect"]  # the 307 was not followed to /hook again
