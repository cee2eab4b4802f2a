"""Input limits at the door: request body size, and the token buckets of the rate limits."""

from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodySizeLimit", "TokenBuckets", "Verdict", "json_error", "refuse_rate"]


async def json_error(
    send: Send, status: int, body: dict[str, object], headers: list[tuple[bytes, bytes]]
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class BodySizeLimit:
    """Refuses request bodies larger than `max_bytes` with 413 before the app sees them.

    A declared Content-Length over the limit is refused at once; otherwise the body is read
    (at most `max_bytes`, however it is chunked) and handed on to the app as it came.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        buffered: list[Message] = []
        size = 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        await json_error(
            send, 413, {"error": f"request body larger than {self.max_bytes} bytes"}, []
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """One take from a bucket: whether it was allowed, and what the answer should say."""

    allowed: bool
    limit: int
    remaining: int
    reset: int  # seconds until the bucket is full again
    retry_after: int  # seconds until the next token, when refused

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset).encode()),
        ]


class TokenBuckets:
    """A token bucket per key: `per_minute` takes a minute, bursts up to the same.

    The oldest keys are forgotten beyond `max_keys`, so a flood of new keys costs bounded
    memory (a forgotten key starts again full, which only ever errs towards allowing).
    """

    def __init__(
        self,
        *,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _level(self, key: str, now: float) -> float:
        tokens, last = self._buckets.get(key, (self.capacity, now))
        return min(self.capacity, tokens + (now - last) * self.rate)

    def empty(self, key: str) -> bool:
        """Whether a take would be refused now (without taking)."""
        return self._level(key, self.clock()) < 1.0

    def take(self, key: str) -> Verdict:
        now = self.clock()
        tokens = self._level(key, now)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return Verdict(
            allowed=allowed,
            limit=int(self.capacity),
            remaining=int(tokens),
            reset=math.ceil((self.capacity - tokens) / self.rate) if self.rate else 0,
            retry_after=math.ceil((1.0 - tokens) / self.rate) if self.rate else 0,
        )


async def refuse_rate(send: Send, verdict: Verdict, error: str = "rate limit exceeded") -> None:
    """429 with Retry-After and the RateLimit headers."""
    await json_error(
        send,
        429,
        {"error": error, "retry_after": verdict.retry_after},
        [*verdict.headers, (b"retry-after", str(verdict.retry_after).encode())],
    )
