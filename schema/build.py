"""The schema, its protective extensions, and the ASGI app serving it over HTTP and ws."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import strawberry
from strawberry.asgi import GraphQL
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

from resolvers.context import ANONYMOUS, Services
from schema.context import GraphQLContext
from schema.errors import CodedError
from schema.mutations import Mutation
from schema.queries import Query
from schema.subscriptions import Subscription

__all__ = ["ControlPlaneGraphQL", "build_schema"]

MAX_DEPTH = 10
MAX_TOKENS = 2000
MAX_ALIASES = 30


def _should_mask(error: Any) -> bool:
    # Validation errors and coded domain errors are for the client; anything else is a bug
    # whose text may leak internals.
    original = getattr(error, "original_error", None)
    return original is not None and not isinstance(original, CodedError)


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(disable_field_suggestions=True),
        extensions=[
            lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
            lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
            lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
            # Both keep their LRU caches at module level, shared by every request.
            lambda: ParserCache(maxsize=512),
            lambda: ValidationCache(maxsize=512),
            lambda: MaskErrors(should_mask_error=_should_mask),
        ],
    )


class ControlPlaneGraphQL(GraphQL[GraphQLContext, None]):
    """Serves the schema; the services come from the app's lifespan state per request."""

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
        websocket = getattr(request, "scope", {}).get("type") == "websocket"
        services: Services = request.state.lain.services
        return GraphQLContext(
            services=services,
            principal=ANONYMOUS,
            websocket=websocket,
            request=request,
            response=response,
        )
