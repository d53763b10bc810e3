"""Reading a validated GraphQL operation the way the record executors need it.

Both fast executors (`sqljson.direct`, which builds responses from `RecordReader` objects,
and `sqljson`, which has PostgreSQL build them) walk the same document the same way:
fields by response key through fragments, the root connections they know, and arguments
coerced exactly as graphql-core coerces them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
)
from graphql.execution.values import get_argument_values
from strawberry.utils.str_converters import to_camel_case

from resolvers.customer import customer_ordering
from resolvers.filters import CUSTOMER_FILTERS, FilterRule, compile_filter
from resolvers.reader import Ordering
from resolvers.records import CONTACT, CUSTOMER, OPPORTUNITY, SPECS, TICKET, RecordSpec
from resolvers.records_query import CONTACT_FILTERS, OPPORTUNITY_FILTERS, TICKET_FILTERS
from schema import filters as filter_inputs

Fields = dict[str, list[FieldNode]]  # response key → the field nodes merged under it

ROOT_CONNECTIONS: dict[str, tuple[RecordSpec, tuple[FilterRule, ...], type]] = {
    "customers": (CUSTOMER, CUSTOMER_FILTERS, filter_inputs.CustomerFilter),
    "contacts": (CONTACT, CONTACT_FILTERS, filter_inputs.ContactFilter),
    "opportunities": (OPPORTUNITY, OPPORTUNITY_FILTERS, filter_inputs.OpportunityFilter),
    "tickets": (TICKET, TICKET_FILTERS, filter_inputs.TicketFilter),
}


class NotDirectError(Exception):
    """This document needs the general executor."""


def collect(
    selection_sets: Sequence[SelectionSetNode | None],
    fragments: dict[str, FragmentDefinitionNode],
    type_name: str,
) -> Fields:
    """Fields by response key, in document order, through fragments; no directives allowed."""
    found: Fields = {}

    def visit(selection_set: SelectionSetNode | None, seen: frozenset[str]) -> None:
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if selection.directives:
                raise NotDirectError("directives")
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                found.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if condition is None or condition.name.value in (type_name, "Node"):
                    visit(selection.selection_set, seen)
                elif condition.name.value not in SPECS:
                    raise NotDirectError("abstract type condition")
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is None or name in seen:
                    raise NotDirectError("fragment")
                if fragment.type_condition.name.value in (type_name, "Node"):
                    visit(fragment.selection_set, seen | {name})

    for selection_set in selection_sets:
        visit(selection_set, frozenset())
    return found


def sub(nodes: list[FieldNode]) -> list[SelectionSetNode | None]:
    """The selection sets of the field nodes merged under one response key."""
    return [node.selection_set for node in nodes]


def strawberry_input(cls: type, values: dict[str, Any] | None) -> Any:
    """A Strawberry input object from graphql-core's coerced argument values."""
    if values is None:
        return None
    names = {f.graphql_name or to_camel_case(f.python_name): f.python_name
             for f in cls.__strawberry_definition__.fields}  # type: ignore[attr-defined]  # fmt: skip
    return cls(**{names[key]: value for key, value in values.items()})


class Arguments:
    """Field arguments, coerced with the request's variables."""

    def __init__(self, schema: Any, variables: Any, cipher: Any = None) -> None:
        self.schema = schema
        self.variables = variables
        self.cipher = cipher  # blind indexes for filters on encrypted fields

    def of(self, parent_type: str, node: FieldNode) -> dict[str, Any]:
        definition = self.schema.get_type(parent_type).fields[node.name.value]
        return get_argument_values(definition, node, self.variables)

    def root_page(self, name: str, node: FieldNode, decisions: Any) -> tuple[Any, ...]:
        """(spec, arguments, filter conditions, ordering or None) of a root connection."""
        spec, rules, filter_type = ROOT_CONNECTIONS[name]
        arguments = self.of("Query", node)
        where = compile_filter(
            spec,
            decisions,
            rules,
            strawberry_input(filter_type, arguments.get("filter")),
            self.cipher,
        )
        ordering: Ordering | None = None
        order = arguments.get("orderBy")
        if order is not None:
            ordering = customer_ordering(
                decisions, strawberry_input(filter_inputs.CustomerOrder, order)
            )
        return spec, arguments, where, ordering
