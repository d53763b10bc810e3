"""What the schema reveals about itself: introspection, and "Did you mean …" suggestions.

Outside dev mode a client learns the schema from the documentation, not from the server, and
a partner token never learns it at all: its scopes open a few fields, and the full schema names
every sensitive field there is. Suggestions are introspection by trial and error (`{ customers
{ nodes { phon } } }` answers "Did you mean 'phone'?"), so they go with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from graphql import (
    ASTValidationRule,
    DocumentNode,
    ExecutableDefinitionNode,
    FieldNode,
    InlineFragmentNode,
    SelectionSetNode,
    ValidationContext,
)
from graphql.validation.validation_context import ASTValidationContext
from strawberry.extensions import SchemaExtension

from api.hardening.limits import INTROSPECTION_ROOTS
from policy.principal import Principal
from resolvers.errors import ForbiddenError

# graphql-core's wording, with one or several quoted names: " Did you mean 'a', 'b', or 'c'?"
_SUGGESTION = re.compile(r" ?Did you mean [^?]*\?")


def scrub_suggestions(message: str) -> str:
    """`message` without graphql-core's "Did you mean …?" hint."""
    return _SUGGESTION.sub("", message)


class IntrospectionDisabledError(ForbiddenError):
    """Introspection is off for this caller; `field` names the meta-field asked for."""

    def __init__(self, field: str) -> None:
        super().__init__(field, "Introspection is disabled")


def may_introspect(principal: Principal | None, *, enabled: bool) -> bool:
    """Users may introspect where it is enabled (dev mode); partner tokens never may."""
    return enabled and principal is not None and not principal.is_partner


def introspection_fields(document: DocumentNode) -> set[str]:
    """The `__schema` / `__type` fields anywhere in the document, fragments included."""
    found: set[str] = set()
    stack: list[SelectionSetNode] = [
        d.selection_set for d in document.definitions if isinstance(d, ExecutableDefinitionNode)
    ]
    while stack:
        for selection in stack.pop().selections or ():
            if isinstance(selection, FieldNode):
                if selection.name.value in INTROSPECTION_ROOTS:
                    found.add(selection.name.value)
                elif selection.selection_set is not None:
                    stack.append(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                stack.append(selection.selection_set)
    return found


class IntrospectionGate(SchemaExtension):
    """Refuses `__schema` and `__type` before validation unless the caller may introspect.

    A per-request check rather than a validation rule: the validation cache keys on the query
    text alone, and the answer depends on who asks. `__typename` stays allowed: clients need it
    to tell the types of a `node` apart.
    """

    def __init__(self, *, enabled: bool) -> None:
        super().__init__()
        self.enabled = enabled

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        principal = getattr(context.context, "principal", None)
        document = context.graphql_document
        if document is not None and not may_introspect(principal, enabled=self.enabled):
            found = introspection_fields(document)
            if found:
                raise IntrospectionDisabledError(sorted(found)[0])
        yield


class HideSuggestionsRule(ASTValidationRule):
    """Turns off suggestions for every rule of the validation pass it is listed in.

    graphql-core's `validate(hide_suggestions=True)` does this, but Strawberry does not pass
    the option; the rules read it from the shared ValidationContext when they report.
    """

    def __init__(self, context: ASTValidationContext) -> None:
        super().__init__(context)
        if isinstance(context, ValidationContext):
            context._hide_suggestions = True  # the option validate() would have set


class ScrubSuggestions(SchemaExtension):
    """Removes "Did you mean …" from execution errors (variable and enum value coercion)."""

    def on_execute(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        for error in getattr(result, "errors", None) or ():
            error.message = scrub_suggestions(error.message)
