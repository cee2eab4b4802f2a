"""The pages a browser opens: `/ui/` with its headers, GraphiQL's page with a way out when
its assets cannot load, and the schema document it links to."""

from __future__ import annotations

import argparse
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from schema.export import render
from server.admin import run_admin
from server.app import create_app
from server.graphiql import graphiql_page
from server.settings import Settings, SettingsError, load_settings


@pytest.fixture
def settings(database_url: str, data_dir: Path) -> Settings:
    return replace(load_settings({}), data_dir=data_dir, database_url=database_url)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(settings) as client:
        yield client


@contextlib.asynccontextmanager
async def _client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        LifespanManager(create_app(settings)) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(manager.app), base_url="http://test"
        ) as client,
    ):
        yield client


async def test_ui_serves_its_page_and_files_with_a_strict_policy(
    client: httpx.AsyncClient,
) -> None:
    bare = await client.get("/ui")
    assert bare.status_code in (307, 308)
    assert bare.headers["location"].endswith("/ui/")
    page = await client.get("/ui/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    # Everything the page loads is its own: no CDN, no inline script.
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sorted(sources) == ["data:,", "ui.css", "ui.js"]
    assert "<script>" not in page.text
    for name in ("ui.js", "ui.css"):
        asset = await client.get(f"/ui/{name}")
        assert asset.status_code == 200
        assert asset.headers["content-security-policy"] == policy
    assert (await client.get("/ui/../server/app.py")).status_code == 404


async def test_ui_script_never_renders_data_as_markup(client: httpx.AsyncClient) -> None:
    script = (await client.get("/ui/ui.js")).text
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script


async def test_graphiql_page_explains_itself_when_assets_fail(client: httpx.AsyncClient) -> None:
    page = await client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "GraphiQL could not load" in page.text
    assert '"/ui/"' in page.text
    assert '"/graphql/schema.graphql"' in page.text
    # The fallback runs before the first asset is requested.
    assert page.text.index('addEventListener("error"') < page.text.index("https://unpkg.com/")


def test_graphiql_assets_come_from_the_configured_mirror() -> None:
    page = graphiql_page("https://mirror.example/npm/")
    assert "unpkg.com" not in page
    assert 'src="https://mirror.example/npm/react@' in page
    assert 'href="https://mirror.example/npm/graphiql@' in page
    # The pinned integrity hashes stay: a mirror must serve the very same files.
    assert page.count('integrity="sha384-') == 7
    local = graphiql_page("/assets")
    assert 'src="/assets/graphiql@' in local


@pytest.mark.parametrize(
    "value", ["ftp://mirror", "mirror.example", 'https://x/"><script>', "https://a b"]
)
def test_graphiql_assets_url_setting_is_checked(value: str) -> None:
    with pytest.raises(SettingsError, match="LAIN_CONSOLE_GRAPHIQL_ASSETS_URL must be"):
        load_settings({"LAIN_CONSOLE_GRAPHIQL_ASSETS_URL": value})
    good = load_settings({"LAIN_CONSOLE_GRAPHIQL_ASSETS_URL": "http://10.0.0.5:8080/npm"})
    assert good.graphiql_assets_url == "http://10.0.0.5:8080/npm"


async def test_schema_document_is_the_exported_sdl(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql/schema.graphql")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == render()


async def test_schema_document_needs_a_token_with_access_control_on(settings: Settings) -> None:
    await run_admin(settings, argparse.Namespace(command="user", name="ops", admin=False))
    token = await run_admin(
        settings,
        argparse.Namespace(
            command="token", action="create", name="ops", label="", expires_in_days=None
        ),
    )
    async with _client(replace(settings, auth=True)) as client:
        anonymous = await client.get("/graphql/schema.graphql")
        assert anonymous.status_code == 401
        assert anonymous.json()["code"] == "UNAUTHENTICATED"
        forged = await client.get(
            "/graphql/schema.graphql", headers={"authorization": "Bearer not-a-token"}
        )
        assert forged.status_code == 401
        signed_in = await client.get(
            "/graphql/schema.graphql", headers={"authorization": f"Bearer {token}"}
        )
        assert signed_in.status_code == 200
        assert "type Query" in signed_in.text
        # The page itself is static and public: it asks for the token.
        assert (await client.get("/ui/")).status_code == 200
