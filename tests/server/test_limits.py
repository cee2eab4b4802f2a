from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server.limits import BodySizeLimit, RateLimit


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


async def test_rate_limit_answers_429_with_retry_after_and_refills() -> None:
    now = [0.0]
    app = RateLimit(
        Starlette(routes=[Route("/", echo, methods=["POST"])]), per_minute=2, clock=lambda: now[0]
    )
    async with _client(app) as client:
        first = await client.post("/", headers={"access-token": "a"})
        assert first.status_code == 200
        assert first.headers["ratelimit-limit"] == "2"
        assert first.headers["ratelimit-remaining"] == "1"
        assert (await client.post("/", headers={"access-token": "a"})).status_code == 200
        refused = await client.post("/", headers={"access-token": "a"})
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "30"
        assert refused.json() == {"error": "rate limit exceeded", "retry_after": 30}
        # another caller has its own bucket
        assert (await client.post("/", headers={"access-token": "b"})).status_code == 200
        now[0] += 30
        assert (await client.post("/", headers={"access-token": "a"})).status_code == 200
