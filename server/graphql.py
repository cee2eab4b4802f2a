"""Serving the schema over HTTP and websockets, with the caller authenticated per request."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.websockets import WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.extensions import SchemaExtension
from strawberry.http import GraphQLHTTPResponse
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET

from resolvers.core.context import ANONYMOUS, Principal
from resolvers.core.credentials import token_from_headers, token_from_params
from resolvers.watch import Credentials
from rest_compat import jsonbody
from schema.build import build_schema
from schema.context import GraphQLContext
from schema.introspection import may_introspect
from server.auth import AuthUnavailable
from server.fanout import Fanout, FanoutRenderer, FanoutTransportWSHandler, Outbox
from server.graphiql import DEFAULT_ASSETS_URL, graphiql_page
from server.readcache import CACHEABLE

__all__ = ["ControlPlaneGraphQL"]

log = logging.getLogger(__name__)


class _WebSocket(ASGIWebSocketAdapter):
    """A rejected connection is closed by `on_ws_connect` itself (with 4401, which Strawberry
    cannot send); Strawberry's own close and error message after it would raise on the closed
    socket and log a traceback, so once the socket is closed they are dropped."""

    # Set by the graphql-transport-ws handler: its messages and its close go through it, in
    # order. The legacy graphql-ws protocol writes to the socket directly.
    outbox: Outbox | None = None

    def _closed(self) -> bool:
        return self.ws.application_state is WebSocketState.DISCONNECTED

    async def send_json(self, message: Mapping[str, object]) -> None:
        if not self._closed():
            await super().send_json(message)

    async def close(self, code: int, reason: str) -> None:
        if self._closed():
            return
        if self.outbox is not None:
            await self.outbox.close(code, reason)
        else:
            await super().close(code, reason)


class ControlPlaneGraphQL(GraphQL[GraphQLContext, None]):
    """The services and the authenticator come from the app's lifespan state per request."""

    websocket_adapter_class = _WebSocket
    graphql_transport_ws_handler_class = FanoutTransportWSHandler

    def __init__(
        self,
        *,
        graphiql: bool,
        recheck_seconds: float = 30.0,
        send_queue: int = 256,
        graphiql_assets_url: str = DEFAULT_ASSETS_URL,
        extensions: Sequence[Callable[[], SchemaExtension]] = (),
    ) -> None:
        self._recheck_seconds = recheck_seconds
        self._graphiql_page = graphiql_page(graphiql_assets_url)
        schema = build_schema(extensions=extensions)
        self._sdl = schema.as_str() + "\n"
        self.fanout = Fanout(FanoutRenderer(schema, self.encode_json), send_queue=send_queue)
        super().__init__(
            schema,
            graphql_ide="graphiql" if graphiql else None,
            # Queries over GET, so that they can be revalidated with ETags; Strawberry
            # refuses mutations over GET (no cookie carries a credential: no CSRF either).
            allow_queries_via_get=True,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            connection_init_wait_timeout=timedelta(seconds=10),
            max_subscriptions_per_connection=20,
            keep_alive=True,
            keep_alive_interval=15,
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(self._graphiql_page)

    async def schema_document(self, request: Request) -> Response:
        """The schema as SDL, for those who may introspect it (GraphiQL's offline page links
        here; codegen tools read it)."""
        principal = getattr(request.state, "principal", None) or ANONYMOUS
        auth_enabled = request.state.lain.services.auth_enabled
        if not may_introspect(auth_enabled=auth_enabled, authenticated=principal.authenticated):
            return JSONResponse(
                {
                    "error": "the schema needs a signed-in caller while access control is on",
                    "code": "UNAUTHENTICATED",
                },
                status_code=401,
                headers={"www-authenticate": "Bearer"},
            )
        return PlainTextResponse(self._sdl)

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        # An answer with errors may be the moment's (a masked failure): never cached.
        if not result.errors:
            request.scope[CACHEABLE] = True
        return await super().process_result(request, result)

    def decode_json(self, data: str | bytes) -> object:
        return jsonbody.loads(data)

    def parse_json(self, data: str | bytes) -> Any:
        try:
            return super().parse_json(data)
        except jsonbody.DuplicateKey as exc:
            raise HTTPException(400, str(exc)) from exc

    async def get_context(self, request: Any, response: Any = None) -> GraphQLContext:
        state = request.state.lain
        websocket = request.scope["type"] == "websocket"
        principal = ANONYMOUS
        if not websocket:
            # Decided by the server's gate; an invalid token counts as none, so operations
            # answer UNAUTHENTICATED.
            principal = getattr(request.state, "principal", None) or ANONYMOUS
        return GraphQLContext(
            services=state.services,
            principal=principal,
            websocket=websocket,
            request=request,
            response=response,
            recheck_seconds=self._recheck_seconds,
        )

    async def on_ws_connect(self, context: GraphQLContext) -> Any:
        """Authenticate a websocket once, at `connection_init` (browsers can't set headers).

        With auth on, a missing or bad token closes the socket with 4401.
        """
        state = context.request.state.lain
        token = token_from_params(context.connection_params or {}) or token_from_headers(
            context.request.headers
        )
        try:
            principal = await state.authenticator.principal(token)
        except AuthUnavailable:
            # 1013: try again later. The token may be fine; the userinfo service is not.
            await context.request.close(code=1013, reason="Authentication unavailable")
            raise ConnectionRejectionError() from None
        if principal is None or (state.services.auth_enabled and not principal.authenticated):
            log.info("websocket rejected with 4401: %s token", "no" if token is None else "a bad")
            await context.request.close(code=4401, reason="Unauthorized")
            raise ConnectionRejectionError()
        context.set_principal(principal)

        async def reauthenticate() -> Principal | None:
            again: Principal | None = await state.authenticator.principal(token)
            if again is None or (state.services.auth_enabled and not again.authenticated):
                # Revoked or expired: nothing else on this socket acts as that user any more.
                context.set_principal(ANONYMOUS)
                return None
            return again

        digest = hashlib.sha256((token or "").encode()).hexdigest()
        context.credentials = Credentials(key=digest, ask=reauthenticate)
        return UNSET
