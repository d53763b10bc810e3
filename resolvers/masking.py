"""Turning a selection into columns the caller may see, and rows into typed objects.

Masking happens in SQL: a field readable on every visible row is selected as is, a field
readable on none is not selected at all, and a field readable on some rows is selected as
`CASE WHEN <predicate> THEN column END` together with the predicate itself, so the database
never hands Python a value the caller may not see and Python never evaluates a policy per row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, ColumnElement, Text, case, func, literal_column, null, type_coerce
from sqlalchemy.engine import Row

from db.crypto import KEY_SEPARATOR, FieldCipher
from policy.custom_fields import KEY_PATTERN
from policy.decisions import AccessDecisions
from policy.predicates import Predicate, ScopeColumns
from policy.vocabulary import Action
from resolvers.records import FieldSpec, RecordSpec
from schema.node import to_global_id

ENCRYPTED = "$enc"  # the marker of an encrypted value inside `customFields` (as sqljson's)


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
    facts: ScopeColumns | None = None,
) -> ColumnPlan:
    """`facts`: where the scope facts of a row are read, when not from `spec.from_clause()`
    (a nested page reads them from its parent customer's row, see `sqljson`)."""
    table = spec.table
    facts = facts if facts is not None else spec.scope_columns()
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
        if field.is_custom:
            keys = plan_custom_fields(spec, decisions, action, facts)
            visible.append(field)
            visible.extend(keys.visible)
            hidden.extend(keys.hidden)
            row_dependent.extend(keys.row_dependent)
            columns.extend(keys.flags)
            columns.append(keys.value.label(name))
            continue
        predicate: Predicate = decisions.field(spec.resource, name, action)
        if predicate.is_never:
            hidden.append(field)
            continue
        source: Any = None
        if field.column is not None:
            source = field.expression() if field.expression else table.c[field.column]
        if predicate.is_always:
            visible.append(field)
            if source is not None:
                columns.append(source.label(name))
            continue
        row_dependent.append(field)
        condition = predicate.sql(facts)
        columns.append(case((condition, True), else_=False).label(f"_can_{name}"))
        if source is not None:
            columns.append(case((condition, source), else_=None).label(name))
    return ColumnPlan(spec, tuple(visible), tuple(hidden), tuple(row_dependent), tuple(columns))


@dataclass(frozen=True)
class CustomFieldsPlan:
    """`customFields` for one principal: its keys sorted like built-in fields, and one JSON
    object built in SQL of the keys readable on each row (a denied key is not in it)."""

    visible: tuple[FieldSpec, ...]
    hidden: tuple[FieldSpec, ...]
    row_dependent: tuple[FieldSpec, ...]
    flags: tuple[ColumnElement[Any], ...]  # `_can_cf.<key>` of the row-dependent keys
    value: ColumnElement[Any]


def plan_custom_fields(
    spec: RecordSpec, decisions: AccessDecisions, action: Action, facts: ScopeColumns
) -> CustomFieldsPlan:
    """Each active definition is a policy field `cf.<key>`, decided as a built-in field is.

    A sensitive value leaves the database as `{"$enc": label, "v": stored}` and is decrypted
    in Python (by `Materialiser`, or by `sqljson.executor` for compiled reads).
    """
    stored = spec.table.c.custom_fields
    visible: list[FieldSpec] = []
    hidden: list[FieldSpec] = []
    row_dependent: list[FieldSpec] = []
    flags: list[ColumnElement[Any]] = []
    pairs: list[ColumnElement[Any]] = []
    for definition in decisions.snapshot.catalog.active(spec.resource):
        name, key = definition.field, definition.key
        assert KEY_PATTERN.match(key), key  # written into the statement as a constant
        label = definition.cipher_label if definition.sensitive else None
        pseudo = FieldSpec(name=name, attr="", encrypted_as=label)
        predicate = decisions.field(spec.resource, name, action)
        if predicate.is_never:
            hidden.append(pseudo)
            continue
        json_key = literal_column(f"'{key}'", Text)
        value: ColumnElement[Any] = stored.op("->")(json_key)
        if label is not None:
            sealed: ColumnElement[Any] = stored.op("->>")(json_key)
            if "data_key" in spec.table.c:  # under the record's data key: it travels along
                data_key = spec.table.c.data_key
                sealed = case((data_key.is_(None), sealed), else_=sealed + KEY_SEPARATOR + data_key)
            marker = func.json_build_object(
                literal_column("'$enc'", Text), literal_column(f"'{label}'", Text),
                literal_column("'v'", Text), sealed,
            )  # fmt: skip
            value = case((stored.has_key(key), marker), else_=null())
        if predicate.is_always:
            visible.append(pseudo)
        else:
            row_dependent.append(pseudo)
            condition = predicate.sql(facts)
            flags.append(case((condition, True), else_=False).label(f"_can_{name}"))
            value = case((condition, value), else_=null())
        pairs.extend((json_key, value))
    if pairs:
        # an absent key is SQL NULL: stripped, so a denied or unset key is not in the object
        built: ColumnElement[Any] = func.json_strip_nulls(func.json_build_object(*pairs))
    else:
        built = literal_column("'{}'::json")
    return CustomFieldsPlan(
        tuple(visible), tuple(hidden), tuple(row_dependent), tuple(flags),
        type_coerce(built, JSON),
    )  # fmt: skip


@dataclass
class Materialiser:
    """Builds schema objects from rows of a `ColumnPlan`, noting which fields were withheld.

    Rows are read by position and objects filled through `__dict__` (fields left unset read
    their dataclass defaults from the class): at ~500 rows per nested view, keyword `__init__`
    calls and per-row mapping views were a visible share of a request.
    """

    plan: ColumnPlan
    cipher: FieldCipher

    def build(self, rows: Sequence[Row[Any]]) -> tuple[list[Any], set[str]]:
        objects, withheld, _ = self.build_noting(rows)
        return objects, withheld

    def build_noting(
        self, rows: Sequence[Row[Any]]
    ) -> tuple[list[Any], set[str], dict[str, list[Any]]]:
        """The objects, the fields withheld on any row, and per row-dependent field the keys
        of the rows it was withheld on (the read log's `masked`)."""
        if not rows:
            return [], set(), {}
        spec = self.plan.spec
        # the plan's columns come first in every statement, in the plan's order
        position = {column.name: i for i, column in enumerate(self.plan.columns)}
        private = [(attr, position[f"_{attr}"]) for attr in spec.private]
        pk_at = position["_pk"]
        visible = [
            (f.attr, position[f.name], self._converter(f))
            for f in self.plan.visible
            if f.column is not None
        ]
        dependent = [
            (f.name, f.attr, position[f"_can_{f.name}"],
             position[f.name] if f.column is not None else None, self._converter(f))
            for f in self.plan.row_dependent
        ]  # fmt: skip
        hidden = frozenset(f.name for f in self.plan.hidden)
        withheld_any: set[str] = set(hidden)
        masked_on: dict[str, list[Any]] = {}
        build, type_name = spec.build, spec.type_name
        objects = []
        for row in rows:
            # unset fields read their dataclass defaults from the class itself
            values: dict[str, Any] = {}
            for attr, at in private:
                values[attr] = row[at]
            values["id"] = to_global_id(type_name, row[pk_at])
            for attr, at, convert in visible:
                value = row[at]
                values[attr] = None if value is None else convert(value)
            withheld = hidden
            for name, attr, can_at, at, convert in dependent:
                if row[can_at]:
                    if at is not None:
                        value = row[at]
                        values[attr] = None if value is None else convert(value)
                else:
                    withheld = withheld | {name}
                    withheld_any.add(name)
                    masked_on.setdefault(name, []).append(row[pk_at])
            values["withheld"] = withheld
            obj = build.__new__(build)
            obj.__dict__.update(values)
            objects.append(obj)
        return objects, withheld_any, masked_on

    def converter(self, field: FieldSpec) -> Callable[[Any], Any]:
        """How a stored value of `field` becomes its API value (decrypted, typed): also for
        readers that skip the objects, such as exports (`bulk.rows`)."""
        return self._converter(field)

    def _converter(self, field: FieldSpec) -> Callable[[Any], Any]:
        if field.is_custom:
            decrypt = self.cipher.decrypt

            def custom(values: dict[str, Any]) -> dict[str, Any]:
                return {
                    key: decrypt(value[ENCRYPTED], value["v"])
                    if isinstance(value, dict) and ENCRYPTED in value
                    else value
                    for key, value in values.items()
                }

            return custom
        if field.encrypted_as is not None:
            label, decrypt = field.encrypted_as, self.cipher.decrypt
            return lambda value: decrypt(label, value)
        if field.convert is not None:
            return field.convert
        return _identity


def _identity(value: Any) -> Any:
    return value
