"""Turning a selection into columns the caller may see, and rows into typed objects.

Masking happens in SQL: a field readable on every visible row is selected as is, a field
readable on none is not selected at all, and a field readable on some rows is selected as
`CASE WHEN <predicate> THEN column END` together with the predicate itself, so the database
never hands Python a value the caller may not see and Python never evaluates a policy per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, case
from sqlalchemy.engine import Row

from db.crypto import FieldCipher
from policy.decisions import AccessDecisions
from policy.predicates import Predicate
from policy.vocabulary import Action
from resolvers.records import FieldSpec, RecordSpec
from schema.node import to_global_id


@dataclass(frozen=True)
class ColumnPlan:
    """What to select for one type and selection, decided once per request."""

    spec: RecordSpec
    visible: tuple[FieldSpec, ...]  # readable on every visible row
    hidden: tuple[FieldSpec, ...]  # readable on none
    row_dependent: tuple[FieldSpec, ...]  # readable on some: value and flag are selected
    columns: tuple[ColumnElement[Any], ...]

    @property
    def returned_fields(self) -> list[str]:
        return sorted(f.name for f in (*self.visible, *self.row_dependent))


def plan_columns(
    spec: RecordSpec,
    requested: Iterable[str],
    decisions: AccessDecisions,
    action: Action = Action.READ,
) -> ColumnPlan:
    table = spec.table
    facts = spec.scope_columns()
    visible: list[FieldSpec] = []
    hidden: list[FieldSpec] = []
    row_dependent: list[FieldSpec] = []
    columns: list[ColumnElement[Any]] = [
        table.c[column].label(f"_{attr}") for attr, column in spec.private.items()
    ]
    for name in sorted(set(requested)):
        field = spec.fields.get(name)
        if field is None:
            continue  # `id`, `__typename`
        predicate: Predicate = decisions.field(spec.resource, name, action)
        if predicate.is_never:
            hidden.append(field)
            continue
        if predicate.is_always:
            visible.append(field)
            if field.column is not None:
                columns.append(table.c[field.column].label(name))
            continue
        row_dependent.append(field)
        condition = predicate.sql(facts)
        columns.append(case((condition, True), else_=False).label(f"_can_{name}"))
        if field.column is not None:
            columns.append(case((condition, table.c[field.column]), else_=None).label(name))
    return ColumnPlan(spec, tuple(visible), tuple(hidden), tuple(row_dependent), tuple(columns))


@dataclass
class Materialiser:
    """Builds schema objects from rows of a `ColumnPlan`, noting which fields were withheld."""

    plan: ColumnPlan
    cipher: FieldCipher

    def build(self, rows: Sequence[Row[Any]]) -> tuple[list[Any], set[str]]:
        spec = self.plan.spec
        withheld_any: set[str] = {f.name for f in self.plan.hidden} if rows else set()
        hidden_names = frozenset(f.name for f in self.plan.hidden)
        objects = []
        for row in rows:
            mapping = row._mapping
            values: dict[str, Any] = {attr: mapping[f"_{attr}"] for attr in spec.private}
            values["id"] = to_global_id(spec.type_name, values["pk"])
            withheld = set(hidden_names)
            for field in self.plan.visible:
                if field.column is not None:
                    values[field.attr] = self._convert(field, mapping[field.name])
            for field in self.plan.row_dependent:
                if mapping[f"_can_{field.name}"]:
                    if field.column is not None:
                        values[field.attr] = self._convert(field, mapping[field.name])
                else:
                    withheld.add(field.name)
                    withheld_any.add(field.name)
            values["withheld"] = frozenset(withheld)
            objects.append(spec.build(**values))
        return objects, withheld_any

    def _convert(self, field: FieldSpec, value: Any) -> Any:
        if value is None:
            return None
        if field.encrypted_as is not None:
            return self.cipher.decrypt(field.encrypted_as, value)
        if field.convert is not None:
            return field.convert(value)
        return value
