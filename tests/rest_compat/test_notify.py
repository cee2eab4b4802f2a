"""`/notify/<type>/` (COMPAT 3.15) and `POST /repos/<a>/push/` (COMPAT 3.7, 8.3): every row of
their tables, and what a subscriber on a real loopback port receives."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.live import free_port, serve
from tests.rest_compat.helpers import (
    DOCS,
    HELLO_YAML,
    NOT_JSON,
    V1,
    V2,
    Rest,
    deployed_hello,
    publish,
    register,
)

NOTIFY = "/v1/notify/imagepush/"
HOOK = "http://lxcmond.lain:3001/api/v1/imagepush"
BAD_BODY = "invalid request: should be json body with notify_url(array string)"
PUSH = "/v1/repos/hello/push/"
GITURL = "http://gitlab.example.com/lain/hello"
AUTHORS = ["alice@example.com"]
COMMITS = [{"id": "6f8a0c1", "message": "alice [fix the greeting]"}]
RECEIVE_WITHIN = 10.0


async def subscribe(rest: Rest, url: str) -> None:
    await rest.expect(
        "POST",
        "/api/v1/notify/imagepush/",
        {"notify_url": url},
        status=200,
        key="notify",
        url=NOTIFY,
        obj=url,
    )


# ---- /notify/<type>/ ----


async def test_no_subscribers_at_first(rest: Rest) -> None:
    await rest.expect(
        "GET", "/api/v1/notify/imagepush/", status=200, key="notify", url=NOTIFY, obj=[]
    )


@pytest.mark.parametrize("prefix", ["/api/v1", "/v1"])
async def test_post_appends_in_order_with_duplicates(rest: Rest, prefix: str) -> None:
    for url in (HOOK, "http://other/", HOOK):
        await rest.expect(
            "POST",
            f"{prefix}/notify/imagepush/",
            {"notify_url": url},
            status=200,
            key="notify",
            url=NOTIFY,
            obj=url,
        )
    await rest.expect(
        "GET",
        f"{prefix}/notify/imagepush/",
        status=200,
        key="notify",
        url=NOTIFY,
        obj=[HOOK, "http://other/", HOOK],
    )


async def test_delete_removes_one_subscription(rest: Rest) -> None:
    for url in (HOOK, "http://other/", HOOK):
        await subscribe(rest, url)
    await rest.expect(
        "DELETE",
        "/api/v1/notify/imagepush/",
        {"notify_url": HOOK},
        status=200,
        key="notify",
        url=NOTIFY,
        obj=HOOK,
    )
    await rest.expect(
        "GET",
        "/api/v1/notify/imagepush/",
        status=200,
        key="notify",
        url=NOTIFY,
        obj=["http://other/", HOOK],
    )


async def test_delete_of_an_unknown_url_is_400(rest: Rest) -> None:
    await subscribe(rest, HOOK)
    await rest.expect(
        "DELETE",
        "/api/v1/notify/imagepush/",
        {"notify_url": "http://nope/"},
        status=400,
        key="notify",
        url=NOTIFY,
    )
    await rest.expect(
        "GET", "/api/v1/notify/imagepush/", status=200, key="notify", url=NOTIFY, obj=[HOOK]
    )


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
async def test_unknown_type_is_400(rest: Rest, method: str) -> None:
    body = {} if method == "GET" else {"notify_url": HOOK}
    await rest.expect(
        method, "/api/v1/notify/deploy/", body, status=400, key="notify", url="/v1/notify/deploy/"
    )
    await rest.expect(
        "GET", "/api/v1/notify/imagepush/", status=200, key="notify", url=NOTIFY, obj=[]
    )


@pytest.mark.parametrize("method", ["POST", "DELETE", "PUT", "PATCH"])
@pytest.mark.parametrize("body", [NOT_JSON, {}, {"url": HOOK}, [HOOK], {"notify_url": 1}])
async def test_a_bad_body_is_400_before_the_method(rest: Rest, method: str, body: Any) -> None:
    await rest.expect(
        method,
        "/api/v1/notify/imagepush/",
        body,
        status=400,
        key="notify",
        url=NOTIFY,
        msg=BAD_BODY,
    )


async def test_get_ignores_the_body(rest: Rest) -> None:
    await rest.expect(
        "GET", "/api/v1/notify/imagepush/", NOT_JSON, status=200, key="notify", url=NOTIFY, obj=[]
    )


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_other_methods_with_a_valid_body_are_405(rest: Rest, method: str) -> None:
    await rest.expect(
        method,
        "/api/v1/notify/imagepush/",
        {"notify_url": HOOK},
        status=405,
        key="api_notify",
        url=DOCS,
        msg=f"invalid http method {method}",
    )


# ---- /repos/<a>/push/ ----


@contextlib.asynccontextmanager
async def subscriber(status: int = 200) -> AsyncIterator[tuple[str, asyncio.Queue[Any]]]:
    """An HTTP server on a loopback port; yields its URL and what it was POSTed."""
    received: asyncio.Queue[Any] = asyncio.Queue()

    async def hook(request: Request) -> Response:
        received.put_nowait((request.headers["content-type"], await request.json()))
        return Response(b"", status_code=status)

    async with serve(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as url:
        yield f"{url}/hook", received


async def next_post(received: asyncio.Queue[Any]) -> Any:
    async with asyncio.timeout(RECEIVE_WITHIN):
        return await received.get()


def payload(*, lastid: str = V1, nextid: str = V2, operator: str = "unknown") -> dict[str, Any]:
    return {
        "appname": "hello",
        "commits": COMMITS,
        "operator": operator,
        "lastid": lastid.partition("-")[2],
        "nextid": nextid.partition("-")[2],
        "giturl": GITURL,
        "authors": AUTHORS,
    }


async def push(
    rest: Rest, body: Any, *, status: int = 200, msg: str = "ok", url: str = PUSH
) -> None:
    await rest.expect(
        "POST",
        "/api/v1/repos/hello/push/",
        body,
        status=status,
        key="image_push",
        url=url,
        msg=msg,
    )


async def test_push_tells_every_subscriber(rest: Rest) -> None:
    await deployed_hello(rest)
    await publish(rest, "hello", V2, HELLO_YAML)  # pushed, not yet deployed
    async with subscriber() as (first, got_first), subscriber() as (second, got_second):
        for url in (first, second, first):
            await subscribe(rest, url)
        await push(rest, {"authors": AUTHORS, "commits": COMMITS})
        expected = ("application/json", payload())
        assert await next_post(got_first) == expected
        assert await next_post(got_first) == expected  # subscribed twice, told twice
        assert await next_post(got_second) == expected
        # The reply came after every post was answered: nothing else is on its way.
        assert got_first.empty()
        assert got_second.empty()


async def test_push_of_the_deployed_release(rest: Rest) -> None:
    await deployed_hello(rest, V1, V2)
    async with subscriber() as (url, received):
        await subscribe(rest, url)
        await push(rest, {"authors": AUTHORS, "commits": COMMITS}, msg="ok")
        assert await next_post(received) == ("application/json", payload(lastid=V2))


async def test_failing_subscribers_are_ignored(rest: Rest) -> None:
    await deployed_hello(rest)
    await publish(rest, "hello", V2, HELLO_YAML)
    async with subscriber(status=500) as (failing, _), subscriber() as (url, received):
        for each in (f"http://127.0.0.1:{free_port()}/closed", failing, "not a url", url):
            await subscribe(rest, each)
        await push(rest, {"authors": AUTHORS, "commits": COMMITS})
        assert await next_post(received) == ("application/json", payload())


async def test_push_without_subscribers_is_ok(rest: Rest) -> None:
    await deployed_hello(rest)
    await push(rest, {"authors": AUTHORS, "commits": COMMITS})


@pytest.mark.parametrize(
    "body", [None, NOT_JSON, {}, {"authors": AUTHORS}, {"commits": COMMITS, "authors": None}]
)
async def test_push_without_commits_cannot_fetch_them(rest: Rest, body: Any) -> None:
    """No GitLab to ask: LAIN's answer when it could not fetch the commits."""
    await deployed_hello(rest)
    async with subscriber() as (url, received):
        await subscribe(rest, url)
        if body is None:
            response = await rest.client.post("/api/v1/repos/hello/push/")
            assert response.json() == {
                "image_push": None,
                "msg": "Fetch commmits information failed",
                "url": DOCS,
            }
            assert response.status_code == 400
        else:
            await push(rest, body, status=400, msg="Fetch commmits information failed", url=DOCS)
        assert received.empty()


@pytest.mark.parametrize(
    "body", [{"authors": [], "commits": COMMITS}, {"authors": AUTHORS, "commits": []}]
)
async def test_push_with_nothing_changed_is_400(rest: Rest, body: Any) -> None:
    await deployed_hello(rest)
    async with subscriber() as (url, received):
        await subscribe(rest, url)
        await push(rest, body, status=400, msg="Nothing Changed", url=DOCS)
        assert received.empty()


async def test_push_when_the_newest_release_has_no_giturl(rest: Rest) -> None:
    await deployed_hello(rest)
    await publish(rest, "hello", V2, HELLO_YAML.replace("giturl: ", "# giturl: "))
    await push(rest, {"authors": AUTHORS, "commits": COMMITS}, status=400, msg="No Giturl bound")


async def test_push_when_the_newest_release_has_another_giturl(rest: Rest) -> None:
    await deployed_hello(rest)
    await publish(rest, "hello", V2, HELLO_YAML.replace("lain/hello", "lain/other"))
    msg = (
        f"app giturl 'http://gitlab.example.com/lain/other' doesn't match with bound url '{GITURL}'"
    )
    await push(rest, {"authors": AUTHORS, "commits": COMMITS}, status=400, msg=msg)


async def test_push_of_a_never_deployed_app_has_no_bound_giturl(rest: Rest) -> None:
    await register(rest)
    await publish(rest, "hello", V1, HELLO_YAML)
    msg = f"app giturl '{GITURL}' doesn't match with bound url ''"
    await push(rest, {"authors": AUTHORS, "commits": COMMITS}, status=400, msg=msg)


async def test_push_without_releases_is_404(rest: Rest) -> None:
    await register(rest)
    msg = (
        "no avaible images for app hello:\nno images here: "
        "http://registry.lain.local/v2/hello/tags/list\nplease push images first."
    )
    await push(rest, {}, status=404, msg=msg, url="/v1/repos/hello/versions/")


async def test_push_of_an_unregistered_app_is_404(rest: Rest) -> None:
    await rest.expect(
        "POST",
        "/v1/repos/nope/push/",
        {"authors": AUTHORS, "commits": COMMITS},
        status=404,
        key="app",
        url="/v1/repos/",
        msg="app with appname nope not exist, has not been reposited yet",
    )


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
async def test_push_other_methods_are_405(rest: Rest, method: str) -> None:
    await rest.expect(
        method,
        "/api/v1/repos/hello/push/",
        status=405,
        key="image_push",
        url=DOCS,
        msg=f"invalid http method {method}",
    )
