"""Who is calling, decided once per HTTP request, and the rate limits that follow from it."""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from resolvers.core.context import ANONYMOUS, Principal
from resolvers.core.credentials import token_from_headers
from server.auth import AuthUnavailable
from server.limits import TokenBuckets, Verdict, json_error, refuse_rate

__all__ = ["CallerGate"]


class CallerGate:
    """Authenticates each HTTP request once and rate-limits it by who it turned out to be.

    The principal is left at `request.state.principal` for both doors. Buckets are keyed on
    what the caller cannot choose: the signed-in user (whatever token or header spelling it
    used), else the client address. A token we cannot accept is charged to its address's
    bucket of failures; once that is empty, tokens from that address are refused unread, which
    bounds token guessing (and the userinfo calls it would cost). The address is the one the
    server saw, or the one a trusted proxy forwarded (uvicorn's `forwarded_allow_ips`).

    A userinfo outage answers 503 for that request; it is not a bad token.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        per_minute: int,
        failures_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.callers = TokenBuckets(per_minute=per_minute, clock=clock) if per_minute else None
        self.failures = (
            TokenBuckets(per_minute=failures_per_minute, clock=clock)
            if failures_per_minute
            else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/healthz":
            await self.app(scope, receive, send)
            return
        client = scope.get("client") or ("-", 0)
        address = f"addr:{client[0]}"
        token = token_from_headers(Headers(scope=scope))
        if token is not None and self.failures is not None and self.failures.empty(address):
            await refuse_rate(send, self.failures.take(address), "too many invalid tokens")
            return
        try:
            principal = await scope["state"]["lain"].authenticator.principal(token)
        except AuthUnavailable as exc:
            await json_error(
                send,
                503,
                {"error": exc.message, "code": exc.code},
                [(b"retry-after", b"5")],
            )
            return
        scope["state"]["principal"] = principal or ANONYMOUS
        verdict = self._take(address, principal)
        if verdict is not None and not verdict.allowed:
            await refuse_rate(send, verdict)
            return
        await self.app(scope, receive, send if verdict is None else _with_headers(send, verdict))

    def _take(self, address: str, principal: Principal | None) -> Verdict | None:
        if principal is None:
            return self.failures.take(address) if self.failures is not None else None
        if self.callers is None:
            return None
        return self.callers.take(f"user:{principal.name}" if principal.authenticated else address)


def _with_headers(send: Send, verdict: Verdict) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *verdict.headers]}
        await send(message)

    return send_with_headers
