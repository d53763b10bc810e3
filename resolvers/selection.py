"""Which fields a query asks of a type, through fragments, inline fragments and aliases.

Column pruning and FORBIDDEN reporting both need the names (not the aliases) of the fields a
selection reaches for one concrete type. `@skip`/`@include` are deliberately ignored: treating a
skipped field as selected can only fetch a column too many, never one too few.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
)
from strawberry import Info

INTERFACES = frozenset({"Node"})


@dataclass(frozen=True)
class Requested:
    """Fields asked of one type, and for a connection what else the page must carry."""

    fields: frozenset[str]
    total_count: bool = False
    edges: bool = True  # whether the page's edges (and their cursors) are asked for


def _fields_of(
    selection_sets: Iterable[SelectionSetNode | None],
    fragments: dict[str, FragmentDefinitionNode],
    type_name: str,
) -> dict[str, list[FieldNode]]:
    found: dict[str, list[FieldNode]] = {}
    stack = [s for s in selection_sets if s is not None]
    seen_fragments: set[str] = set()
    while stack:
        for selection in stack.pop().selections:
            if isinstance(selection, FieldNode):
                found.setdefault(selection.name.value, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if condition is None or condition.name.value in (type_name, *INTERFACES):
                    stack.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is None or name in seen_fragments:
                    continue
                seen_fragments.add(name)
                if fragment.type_condition.name.value in (type_name, *INTERFACES):
                    stack.append(fragment.selection_set)
    return found


def object_fields(
    field_nodes: Sequence[FieldNode], fragments: dict[str, FragmentDefinitionNode], type_name: str
) -> Requested:
    """Fields asked of the object that `field_nodes` return."""
    nodes = _fields_of([n.selection_set for n in field_nodes], fragments, type_name)
    return Requested(fields=frozenset(name for name in nodes if not name.startswith("__")))


def connection_fields(
    field_nodes: Sequence[FieldNode], fragments: dict[str, FragmentDefinitionNode], type_name: str
) -> Requested:
    """Fields asked of the nodes of the connection that `field_nodes` return."""
    connection, edge_type = f"{type_name}Connection", f"{type_name}Edge"
    top = _fields_of([n.selection_set for n in field_nodes], fragments, connection)
    node_sets: list[SelectionSetNode | None] = [n.selection_set for n in top.get("nodes", [])]
    for edge in top.get("edges", []):
        edge_fields = _fields_of([edge.selection_set], fragments, edge_type)
        node_sets.extend(n.selection_set for n in edge_fields.get("node", []))
    nodes = _fields_of(node_sets, fragments, type_name)
    return Requested(
        fields=frozenset(name for name in nodes if not name.startswith("__")),
        total_count="totalCount" in top,
        edges="edges" in top,
    )


def requested_object(info: Info, type_name: str) -> Requested:
    """Fields asked of the object the current field returns."""
    raw = info._raw_info  # strawberry wraps graphql-core's info; the AST lives there
    return object_fields(raw.field_nodes, raw.fragments, type_name)


def requested_connection(info: Info, type_name: str) -> Requested:
    """Fields asked of the nodes of the connection the current field returns."""
    raw = info._raw_info
    return connection_fields(raw.field_nodes, raw.fragments, type_name)
