"""Which GraphQL documents a read cache may answer: queries whose every field is read from
what the read version follows (see `resolvers.core.readversion`)."""

from __future__ import annotations

import functools

from graphql import FieldNode, GraphQLError, OperationDefinitionNode, OperationType, parse
from graphql.language import Visitor, visit

__all__ = ["UNCACHED_FIELDS", "cacheable_document"]

# Instance output comes from the scheduler's journals, which no version counter follows.
UNCACHED_FIELDS = frozenset({"logs"})
# Longer documents are executed, never cached (the decisions below are kept per document).
_MAX_DOCUMENT = 32 * 1024


class _Check(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.cacheable = True

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: object) -> None:
        if node.operation is not OperationType.QUERY:
            self.cacheable = False

    def enter_field(self, node: FieldNode, *_: object) -> None:
        # By field name, on any type and in fragments too: an alias cannot hide it.
        if node.name.value in UNCACHED_FIELDS:
            self.cacheable = False


def cacheable_document(document: str) -> bool:
    """Whether every operation of `document` is a query reading only versioned state.

    Mutations and subscriptions are never cached; a document that does not parse is left
    to the schema to refuse."""
    if len(document) > _MAX_DOCUMENT:
        return False
    return _decide(document)


@functools.lru_cache(maxsize=256)
def _decide(document: str) -> bool:
    try:
        parsed = parse(document)
    except GraphQLError:
        return False
    check = _Check()
    visit(parsed, check)
    return check.cacheable
