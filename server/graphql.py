"""Serving the schema over HTTP and websockets, with the caller authenticated per request."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types.unset import UNSET

from resolvers.context import ANONYMOUS
from resolvers.credentials import token_from_headers, token_from_params
from schema.build import build_schema
from schema.context import GraphQLContext

__all__ = ["ControlPlaneGraphQL"]


class ControlPlaneGraphQL(GraphQL[GraphQLContext, None]):
    """The services and the authenticator come from the app's lifespan state per request."""

    def __init__(self, *, graphiql: bool) -> None:
        super().__init__(
            build_schema(),
            graphql_ide="graphiql" if graphiql else None,
            allow_queries_via_get=False,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            connection_init_wait_timeout=timedelta(seconds=10),
            max_subscriptions_per_connection=20,
            keep_alive=True,
            keep_alive_interval=15,
        )

    async def get_context(self, request: Any, response: Any = None) -> GraphQLContext:
        state = request.state.lain
        websocket = request.scope["type"] == "websocket"
        principal = ANONYMOUS
        if not websocket:
            # An invalid token counts as none: operations then answer UNAUTHENTICATED.
            found = await state.authenticator.principal(token_from_headers(request.headers))
            principal = found or ANONYMOUS
        return GraphQLContext(
            services=state.services,
            principal=principal,
            websocket=websocket,
            request=request,
            response=response,
        )

    async def on_ws_connect(self, context: GraphQLContext) -> Any:
        """Authenticate a websocket once, at `connection_init` (browsers can't set headers).

        With auth on, a missing or bad token closes the socket with 4401.
        """
        state = context.request.state.lain
        token = token_from_params(context.connection_params or {}) or token_from_headers(
            context.request.headers
        )
        principal = await state.authenticator.principal(token)
        if principal is None or (state.services.auth_enabled and not principal.authenticated):
            await context.request.close(code=4401, reason="Unauthorized")
            raise ConnectionRejectionError()
        context.set_principal(principal)
        return UNSET
