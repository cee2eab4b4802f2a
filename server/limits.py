"""Input limits at the door: request body size, and a per-caller rate limit."""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodySizeLimit", "RateLimit"]


async def _json_error(send: Send, status: int, body: dict[str, object], headers: list) -> None:
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
        await _json_error(
            send, 413, {"error": f"request body larger than {self.max_bytes} bytes"}, []
        )


class RateLimit:
    """A token bucket per caller: `per_minute` requests a minute, bursts up to the same.

    The caller is its token (a digest of it, never the token itself) or, without one, its
    address. Every answer carries RateLimit-Limit/Remaining/Reset; a refused one is 429 with
    Retry-After.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        max_callers: int = 100_000,
    ) -> None:
        self.app = app
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.max_callers = max_callers
        self._buckets: OrderedDict[bytes, tuple[float, float]] = OrderedDict()

    def _caller(self, scope: Scope) -> bytes:
        headers = dict(scope.get("headers", ()))
        token = headers.get(b"access-token") or headers.get(b"authorization")
        if token:
            return hashlib.sha256(token).digest()
        client = scope.get("client") or ("-", 0)
        return f"addr:{client[0]}".encode()

    def _take(self, caller: bytes) -> tuple[bool, float]:
        now = self.clock()
        tokens, last = self._buckets.get(caller, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[caller] = (tokens, now)
        self._buckets.move_to_end(caller)
        while len(self._buckets) > self.max_callers:
            self._buckets.popitem(last=False)
        return allowed, tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/healthz":
            await self.app(scope, receive, send)
            return
        allowed, tokens = self._take(self._caller(scope))
        reset = math.ceil((self.capacity - tokens) / self.rate) if self.rate else 0
        headers = [
            (b"ratelimit-limit", str(int(self.capacity)).encode()),
            (b"ratelimit-remaining", str(int(tokens)).encode()),
            (b"ratelimit-reset", str(reset).encode()),
        ]
        if not allowed:
            retry_after = math.ceil((1.0 - tokens) / self.rate)
            await _json_error(
                send,
                429,
                {"error": "rate limit exceeded", "retry_after": retry_after},
                [*headers, (b"retry-after", str(retry_after).encode())],
            )
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
