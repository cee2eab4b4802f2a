"""Introspection only for signed-in callers when access control is on."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import DocumentNode, FieldNode, GraphQLError, visit
from graphql.language import Visitor
from strawberry.extensions import SchemaExtension

__all__ = ["SignedInIntrospection", "may_introspect"]

_INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})  # `__typename` stays open


class _FindsIntrospection(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def enter_field(self, node: FieldNode, *_: object) -> object:
        if node.name.value in _INTROSPECTION_FIELDS:
            self.found = True
            return Visitor.BREAK
        return None


def may_introspect(*, auth_enabled: bool, authenticated: bool) -> bool:
    """Whether a caller may read the schema: anyone, or only signed-in callers with auth on."""
    return authenticated or not auth_enabled


def _asks_for_introspection(document: DocumentNode) -> bool:
    finder = _FindsIntrospection()
    visit(document, finder)
    return finder.found


class SignedInIntrospection(SchemaExtension):
    """With auth on, an anonymous caller's `__schema`/`__type` is refused: the schema maps
    every operation an attacker could try. Signed-in callers keep it (GraphiQL, codegen).

    It is not a validation rule, because the validation cache is shared by every caller and
    this answer depends on who asks. It must come after ValidationCache in the extension list:
    the errors it sets on entering validation are the ones Strawberry then answers with.
    """

    def on_validate(self) -> Iterator[None]:
        run = self.execution_context
        context = run.context
        if (
            run.graphql_document is not None
            and context is not None
            and not may_introspect(
                auth_enabled=context.services.auth_enabled,
                authenticated=context.principal.authenticated,
            )
            and _asks_for_introspection(run.graphql_document)
        ):
            run.pre_execution_errors = [
                GraphQLError(
                    "introspection needs a signed-in caller while access control is on",
                    extensions={"code": "UNAUTHENTICATED"},
                )
            ]
        yield
