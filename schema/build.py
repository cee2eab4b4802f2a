"""The schema and its protective extensions."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext
from strawberry.utils.logging import StrawberryLogger

from schema.errors import CodedError
from schema.introspection import SignedInIntrospection
from schema.mutations import Mutation
from schema.queries import Query
from schema.subscriptions import Subscription

__all__ = ["build_schema"]

log = logging.getLogger(__name__)

MAX_DEPTH = 10
MAX_TOKENS = 2000
MAX_ALIASES = 30


def _should_mask(error: Any) -> bool:
    # Validation errors and coded domain errors are for the client; anything else is a bug
    # whose text may leak internals.
    original = getattr(error, "original_error", None)
    return original is not None and not isinstance(original, CodedError)


class _Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Client mistakes (validation, coded domain errors such as FORBIDDEN) are one INFO
        line each; only unexpected exceptions are errors, logged with their traceback."""
        for error in errors:
            if _should_mask(error):
                StrawberryLogger.error(error, execution_context)
            else:
                code = (error.extensions or {}).get("code")
                prefix = f"{code}: " if code else ""
                log.info("graphql client error: %s%s", prefix, error.message.replace("\n", " "))


_LIMIT_RULES = [
    *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
    *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
]


def build_schema(*, extensions: Sequence[Callable[[], SchemaExtension]] = ()) -> strawberry.Schema:
    """`extensions` are added after the protective ones (the server's metrics)."""
    return _Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(disable_field_suggestions=True),
        extensions=[
            lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
            # The rules are built once: ValidationCache keys on the rule classes, and a new
            # limiter per request would make a new class, so the cache would never hit.
            lambda: AddValidationRules(_LIMIT_RULES),
            # Both keep their LRU caches at module level, shared by every request.
            lambda: ParserCache(maxsize=512),
            lambda: ValidationCache(maxsize=512),
            SignedInIntrospection,
            lambda: MaskErrors(should_mask_error=_should_mask),
            *extensions,
        ],
    )
