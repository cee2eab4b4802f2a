"""The schema and its protective extensions."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig

from schema.errors import CodedError
from schema.mutations import Mutation
from schema.queries import Query
from schema.subscriptions import Subscription

__all__ = ["build_schema"]

MAX_DEPTH = 10
MAX_TOKENS = 2000
MAX_ALIASES = 30


def _should_mask(error: Any) -> bool:
    # Validation errors and coded domain errors are for the client; anything else is a bug
    # whose text may leak internals.
    original = getattr(error, "original_error", None)
    return original is not None and not isinstance(original, CodedError)


_LIMIT_RULES = [
    *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
    *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
]


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(
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
            lambda: MaskErrors(should_mask_error=_should_mask),
        ],
    )
