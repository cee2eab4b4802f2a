from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server.limits import BodySizeLimit, TokenBuckets


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"size": len(await request.body())})


def _client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t")  # type: ignore[arg-type]


async def test_bodies_over_the_limit_are_refused_with_413() -> None:
    app = BodySizeLimit(Starlette(routes=[Route("/", echo, methods=["POST"])]), max_bytes=10)
    async with _client(app) as client:
        assert (await client.post("/", content=b"x" * 10)).json() == {"size": 10}
        declared = await client.post("/", content=b"x" * 11)
        assert declared.status_code == 413
        assert declared.json() == {"error": "request body larger than 10 bytes"}

        async def chunks():  # no Content-Length: counted as it streams
            for _ in range(3):
                yield b"x" * 5

        streamed = await client.post("/", content=chunks())
        assert streamed.status_code == 413


def test_token_buckets_refuse_with_retry_after_and_refill() -> None:
    now = [0.0]
    buckets = TokenBuckets(per_minute=2, clock=lambda: now[0])
    first = buckets.take("a")
    assert first.allowed
    assert (first.limit, first.remaining) == (2, 1)
    assert dict(first.headers)[b"ratelimit-remaining"] == b"1"
    assert buckets.take("a").allowed
    assert buckets.empty("a")
    refused = buckets.take("a")
    assert not refused.allowed
    assert refused.retry_after == 30
    # another key has its own bucket
    assert buckets.take("b").allowed
    now[0] += 30
    assert not buckets.empty("a")
    assert buckets.take("a").allowed


def test_token_buckets_forget_the_oldest_keys() -> None:
    buckets = TokenBuckets(per_minute=1, max_keys=2)
    for key in ("a", "b", "c"):
        assert buckets.take(key).allowed
    assert buckets.empty("c")
    assert not buckets.empty("a")  # forgotten: starts full again
