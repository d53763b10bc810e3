"""Query limits checked before execution: tokens, depth, aliases, fields and a cost estimate.

Two checks, both bounded by the limits themselves so that refusing costs far less than running:

1. the parser stops at `max_tokens` lexical tokens (and as many comments): graphql-core counts
   them while it parses, so an accepted query is lexed once and a cached one not at all;
2. after parsing and before validation, a walk of the chosen operation, fragments expanded,
   counts depth, aliases, field selections and the cost: each field costs the number of times it
   may be resolved, which is the product of the `first` page sizes of the connections above it.
   The walk stops once the field count passes its bound, so fragment "bombs" (fragments that
   spread each other many times) cost at most `max_fields` steps, and it runs before validation,
   whose overlapping-fields rule is quadratic in the number of duplicated fields.

A refusal raises `QueryTooComplexError`: `extensions.code = "QUERY_TOO_COMPLEX"` with the limit
that was passed, its value, the maximum and the computed cost.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLNamedType,
    GraphQLSchema,
    GraphQLSyntaxError,
    InlineFragmentNode,
    IntValueNode,
    NullValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_list_type,
)
from strawberry.extensions import SchemaExtension

from api.hardening.settings import HardeningSettings
from resolvers.errors import BadUserInputError, DossierError

log = logging.getLogger("dossier.hardening")

INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})
# graphql-core's messages when the parser's max_lexical_tokens / max_comments stop it
_TOO_MANY = re.compile(r"contains more than (\d+) (tokens|comments)\.")


class QueryTooComplexError(DossierError):
    """The operation is over one of the request limits; nothing of it was executed."""

    code = "QUERY_TOO_COMPLEX"

    def __init__(self, limit: str, value: int, maximum: int, cost: int) -> None:
        super().__init__(
            f"Query too complex: {limit} {value} is over the limit of {maximum}",
            limit=limit,
            value=value,
            maximum=maximum,
            cost=cost,
        )


def too_many_tokens(error: Exception, max_tokens: int) -> QueryTooComplexError | None:
    """The refusal a parser error stands for when the token or comment limit stopped it."""
    found = _TOO_MANY.search(str(getattr(error, "message", error)))
    if found is None:
        return None
    return QueryTooComplexError(found.group(2), int(found.group(1)) + 1, max_tokens, cost=0)


# -- pass 2: the operation -------------------------------------------------------------------


class _FieldBudgetSpentError(Exception):
    """Raised inside the walk once the field count passes its bound."""


@dataclass
class OperationMeasure:
    depth: int = 0
    aliases: int = 0
    fields: int = 0
    cost: int = 0
    complete: bool = True  # False when the walk stopped at the field bound


@dataclass
class _Walk:
    schema: GraphQLSchema
    fragments: Mapping[str, FragmentDefinitionNode]
    variables: Mapping[str, Any]
    default_page_size: int
    max_page_size: int
    max_fields: int
    measure: OperationMeasure = field(default_factory=OperationMeasure)

    def selections(
        self,
        selection_set: SelectionSetNode,
        parent: GraphQLNamedType | None,
        multiplier: int,
        page: int | None,
        depth: int,
        spreading: frozenset[str],
    ) -> None:
        for selection in selection_set.selections or ():
            if isinstance(selection, FieldNode):
                self.field(selection, parent, multiplier, page, depth, spreading)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                self.selections(selection.selection_set, target, multiplier, page, depth, spreading)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in spreading:
                    continue  # unknown or circular: validation reports it
                target = self.schema.get_type(fragment.type_condition.name.value)
                self.selections(
                    fragment.selection_set, target, multiplier, page, depth, spreading | {name}
                )

    def field(
        self,
        node: FieldNode,
        parent: GraphQLNamedType | None,
        multiplier: int,
        page: int | None,
        depth: int,
        spreading: frozenset[str],
    ) -> None:
        measure = self.measure
        measure.fields += 1
        if measure.fields > self.max_fields:
            raise _FieldBudgetSpentError
        if node.alias is not None:
            measure.aliases += 1
        name = node.name.value
        if name in INTROSPECTION_ROOTS:
            return  # schema metadata, bounded by the schema; allowed at all only in dev mode
        measure.depth = max(measure.depth, depth + 1)
        measure.cost += multiplier
        if node.selection_set is None:
            return
        definition = _field_of(parent, name)
        return_type = definition.type if definition is not None else None
        if page is not None and is_list_type(get_nullable_type(return_type)):  # type: ignore[arg-type]  # None is answered by is_list_type
            multiplier *= page
        self.selections(
            node.selection_set,
            get_named_type(return_type) if return_type is not None else None,
            multiplier,
            self.page_size(node, definition),
            depth + 1,
            spreading,
        )

    def page_size(self, node: FieldNode, definition: GraphQLField | None) -> int | None:
        """The `first` (or `last`, when paging backward) this connection field will be asked
        for, or None if it takes none; with both, the larger counts."""
        if definition is None or "first" not in definition.args:
            return None
        default = definition.args["first"].default_value
        value: Any = default if isinstance(default, int) else self.default_page_size
        sizes: list[Any] = []
        for argument in node.arguments or ():
            if argument.name.value not in ("first", "last"):
                continue
            literal = argument.value
            if isinstance(literal, IntValueNode):
                try:
                    value = int(literal.value)
                except ValueError:  # more digits than int() accepts
                    value = self.max_page_size + 1
            elif isinstance(literal, VariableNode):
                value = self.variables.get(literal.name.value, value)
            elif isinstance(literal, NullValueNode):
                value = self.default_page_size
            sizes.append(value)
            value = default if isinstance(default, int) else self.default_page_size
        if sizes:
            numbers = [
                size for size in sizes if isinstance(size, int) and not isinstance(size, bool)
            ]
            value = max(numbers) if len(numbers) == len(sizes) else None
        if not isinstance(value, int) or isinstance(value, bool):
            return self.default_page_size  # coercion will refuse it
        if value > self.max_page_size:
            raise BadUserInputError(
                f"`first` may be at most {self.max_page_size}", argument="first"
            )
        return max(value, 0)


def _field_of(parent: GraphQLNamedType | None, name: str) -> GraphQLField | None:
    fields = getattr(parent, "fields", None)
    return fields.get(name) if fields is not None else None


def _chosen_operations(
    document: DocumentNode, operation_name: str | None
) -> Iterator[OperationDefinitionNode]:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        yield from (o for o in operations if o.name and o.name.value == operation_name)
    else:
        yield from operations  # one, or an ambiguous document that execution will refuse


def _variable_values(
    operation: OperationDefinitionNode, given: Mapping[str, Any]
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for definition in operation.variable_definitions or ():
        default = definition.default_value
        if isinstance(default, IntValueNode):
            try:
                values[definition.variable.name.value] = int(default.value)
            except ValueError:
                continue
    values.update(given)
    return values


def measure_operation(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any],
    *,
    default_page_size: int,
    max_page_size: int,
    max_fields: int,
) -> OperationMeasure:
    """Depth, aliases, fields and cost of the operation that will run, fragments expanded."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    measure = OperationMeasure()
    for operation in _chosen_operations(document, operation_name):
        walk = _Walk(
            schema=schema,
            fragments=fragments,
            variables=_variable_values(operation, variables),
            default_page_size=default_page_size,
            max_page_size=max_page_size,
            max_fields=max_fields,
            measure=measure,
        )
        root = schema.get_root_type(operation.operation)
        try:
            walk.selections(operation.selection_set, root, 1, None, 0, frozenset())
        except _FieldBudgetSpentError:
            measure.complete = False
            break
    return measure


# -- the schema extension ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """The bounds the extension enforces (from HardeningSettings and the page-size limits)."""

    max_depth: int
    max_aliases: int
    max_tokens: int
    max_fields: int
    max_cost: int
    default_page_size: int
    max_page_size: int

    @classmethod
    def from_settings(
        cls, settings: HardeningSettings, *, default_page_size: int, max_page_size: int
    ) -> QueryLimits:
        return cls(
            max_depth=settings.max_depth,
            max_aliases=settings.max_aliases,
            max_tokens=settings.max_tokens,
            max_fields=settings.max_fields,
            max_cost=settings.max_cost,
            default_page_size=default_page_size,
            max_page_size=max_page_size,
        )

    def check_operation(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation_name: str | None,
        variables: Mapping[str, Any],
    ) -> OperationMeasure:
        measure = measure_operation(
            schema,
            document,
            operation_name,
            variables,
            default_page_size=self.default_page_size,
            max_page_size=self.max_page_size,
            max_fields=self.max_fields,
        )
        if not measure.complete:
            raise QueryTooComplexError("fields", measure.fields, self.max_fields, measure.cost)
        for limit, value, maximum in (
            ("depth", measure.depth, self.max_depth),
            ("aliases", measure.aliases, self.max_aliases),
            ("cost", measure.cost, self.max_cost),
        ):
            if value > maximum:
                raise QueryTooComplexError(limit, value, maximum, measure.cost)
        return measure


class QueryLimitsExtension(SchemaExtension):
    """Enforces QueryLimits: tokens while parsing, the operation before validation.

    List it before the parser and validation caches: its `on_operation` must set the parser's
    limits before the parser cache parses, and its `on_validate` must refuse before validation.
    """

    def __init__(self, limits: QueryLimits) -> None:
        super().__init__()
        self.limits = limits

    def on_operation(self) -> Iterator[None]:
        # the parser cache keys on these options too, so a cached parse obeyed the same limits
        # graphql-core 3.3's parser options, beyond the keys Strawberry's TypedDict names
        options = cast(dict[str, Any], self.execution_context.parse_options)
        options.update(
            max_lexical_tokens=self.limits.max_tokens, max_comments=self.limits.max_tokens
        )
        try:
            yield
        except GraphQLSyntaxError as error:
            # the parse ran inside the parser cache's hook, so its error passes through here
            refusal = too_many_tokens(error, self.limits.max_tokens)
            if refusal is None:
                raise
            self._log(refusal)
            raise refusal from error

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            try:
                self.limits.check_operation(
                    context.schema._schema,
                    document,
                    context.operation_name,
                    context.variables or {},
                )
            except QueryTooComplexError as refusal:
                self._log(refusal)
                raise
        yield

    def _log(self, refusal: QueryTooComplexError) -> None:
        meta = getattr(self.execution_context.context, "meta", None)
        details = {k: v for k, v in refusal.extensions.items() if k != "code"}
        log.info(
            "query refused", extra={"request_id": getattr(meta, "request_id", None), **details}
        )
