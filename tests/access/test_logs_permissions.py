"""Who may read an app's output, at both doors: the same rule as reading the app."""

from __future__ import annotations

import pytest

from backends.logs import LogStream
from tests.access.conftest import PRINCIPALS, World

LOGS = "/api/v1/apps/hello/procs/web/logs/"


def _expected_status(who: str, auth: bool) -> int:
    if not auth or who in ("normal", "admin", "global-admin"):
        return 200
    return 401 if who in ("anonymous", "bad-token") else 403


@pytest.mark.parametrize("who", PRINCIPALS)
async def test_rest_logs_need_access_to_the_app(world: World, who: str) -> None:
    auth: bool = world.auth  # type: ignore[attr-defined]
    world.scheduler.print_lines("hello.web.web", 1, LogStream.STDOUT, "secret line")
    expected = _expected_status(who, auth)
    response = await world.http.get(f"{LOGS}?tail=5", headers=world.headers(who))
    assert response.status_code == expected
    if expected == 200:
        assert response.text.endswith(" web.1 stdout secret line\n")
    else:
        assert "secret" not in response.text


@pytest.mark.parametrize("who", ["anonymous", "bad-token", "outsider"])
async def test_rest_follow_is_refused_before_it_streams(world: World, who: str) -> None:
    # (A follow that is allowed never ends, which this in-process transport cannot read;
    # tests/e2e/test_logs_local.py follows over a real socket.)
    if not world.auth:  # type: ignore[attr-defined]
        pytest.skip("with auth off everyone may read, as in LAIN")
    world.scheduler.print_lines("hello.web.web", 1, LogStream.STDOUT, "secret line")
    response = await world.http.get(f"{LOGS}?follow=1", headers=world.headers(who))
    assert response.status_code == _expected_status(who, True)
    assert response.headers["content-type"].startswith("application/json")
    assert "secret" not in response.text


@pytest.mark.parametrize("who", PRINCIPALS)
async def test_graphql_instance_logs_need_access_to_the_app(world: World, who: str) -> None:
    auth: bool = world.auth  # type: ignore[attr-defined]
    world.scheduler.print_lines("hello.web.web", 1, LogStream.STDERR, "secret line")
    body = await world.graphql(
        who, '{ app(name: "hello") { procs { instances { logs(tail: 5) { text } } } } }'
    )
    if _expected_status(who, auth) == 200:
        web = body["data"]["app"]["procs"][0]
        assert web["instances"][0]["logs"] == [{"text": "secret line"}]
    else:
        assert body["data"]["app"] is None
        assert "secret" not in str(body)
