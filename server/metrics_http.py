"""Serving the metrics at /metrics, and the middleware and GraphQL extension that feed them."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from resolvers.core.context import ANONYMOUS, Principal
from resolvers.core.webhooks import Network
from server.metrics import Metrics

__all__ = ["MetricsEndpoint", "MetricsMiddleware", "OperationMetrics"]

_UNMATCHED = "unmatched"


def route_template(scope: Scope) -> str:
    """The pattern that served the request (`/api/v1/apps/{app}/`), never its raw path."""
    route = scope.get("route")
    if route is None:
        return _UNMATCHED  # refused before routing (rate limit, body size) or no route
    path: str = getattr(route, "path", "")
    if isinstance(route, Mount):
        # The REST door sets its pattern once it matched; anything else under a mount (the
        # status page's files, an unknown REST path) is the mount and a star.
        inner = scope.get("route_template")
        return f"{path}/{inner}" if inner is not None else f"{path}/*"
    return path or _UNMATCHED


class MetricsMiddleware:
    """Times every HTTP request by route template, method and status; counts websockets."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            gauge = self.metrics.websockets
            gauge.inc()
            try:
                await self.app(scope, receive, send)
            finally:
                gauge.dec()
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the server answers when the app raises before responding
        started = time.perf_counter()
        observed = False

        def observe() -> None:
            nonlocal observed
            observed = True
            self.metrics.requests.labels(
                route_template(scope), scope["method"], str(status)
            ).observe(time.perf_counter() - started)

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                # Before the last byte goes out: a client that reads /metrics right after its
                # answer must find this request counted.
                observe()
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            if not observed:
                observe()


class MetricsEndpoint:
    """GET /metrics. With access control on, only a global admin or a listed network."""

    def __init__(
        self, metrics: Metrics, *, auth: bool, allow_networks: tuple[Network, ...]
    ) -> None:
        self._metrics = metrics
        self._auth = auth
        self._networks = allow_networks

    async def respond(self, request: Request) -> Response:
        if self._auth and not self._from_allowed_network(request):
            principal: Principal = getattr(request.state, "principal", None) or ANONYMOUS
            if not principal.authenticated:
                return JSONResponse(
                    {"error": "metrics need a global admin's token", "code": "UNAUTHENTICATED"},
                    status_code=401,
                    headers={"www-authenticate": "Bearer"},
                )
            if not principal.is_admin:
                return JSONResponse(
                    {"error": "metrics are for global admins", "code": "FORBIDDEN"},
                    status_code=403,
                )
        return Response(generate_latest(self._metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def _from_allowed_network(self, request: Request) -> bool:
        if not self._networks or request.client is None:
            return False
        try:
            address = ipaddress.ip_address(request.client.host)
        except ValueError:
            return False
        return any(address in network for network in self._networks)


class OperationMetrics(SchemaExtension):
    """Times queries and mutations by (bounded) operation name and outcome. Each mutation's
    result code is counted in resolvers/ (both doors); subscriptions by the bus's gauge."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        elapsed = time.perf_counter() - started
        context = self.execution_context
        try:
            kind = context.operation_type
        except Exception:  # unparsable, or an operation name the document lacks
            kind = None
        if kind is OperationType.SUBSCRIPTION:
            return
        if context.pre_execution_errors:
            outcome = "rejected"  # parse, validation or limits
        elif context.result is not None and context.result.errors:
            outcome = "error"
        else:
            outcome = "ok"
        self._metrics.operations.labels(
            kind.value if kind is not None else "unknown",
            self._metrics.operation_name(context.operation_name),
            outcome,
        ).observe(elapsed)
