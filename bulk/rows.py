"""Rows of a `ColumnPlan` straight into the cells of an export file, one compiled reader each.

`Materialiser` builds a schema object per row and the export then read it back field by field;
for 100 000 rows that object and its `withheld` set were a third of an export's Python time.
A `RowReader` decides once per export where each exported column is in the statement's row,
how it is converted (decrypted, typed) and whether a row-dependent mask applies, and turns each
row into a list of cell values with one closure call per column.

What a cell holds is exactly what `Materialiser` would have put there: the same converters
(`Materialiser.converter`, so a field newly encrypted is decrypted here too), the same global
ids, and nothing for a field withheld on that row (its `_can_<field>` flag is false; SQL already
returned NULL in its place).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from db.crypto import FieldCipher
from resolvers.masking import ColumnPlan, Materialiser
from resolvers.records import CUSTOM_FIELDS, FieldSpec
from schema.node import to_global_id

Cell = Callable[[Sequence[Any]], Any]  # a row of the plan's statement → one cell's value


class RowReader:
    """Compiled once per export; `cells(row)` is the row's line of the file, uncoded."""

    def __init__(
        self,
        plan: ColumnPlan,
        cipher: FieldCipher,
        columns: Sequence[tuple[FieldSpec | None, str | None]],
    ) -> None:
        """`columns`: per exported column its field (None: the global id) and, for a custom
        field's column, its key inside `customFields`."""
        self._materialiser = Materialiser(plan, cipher)
        self._plan = plan
        self._position = {column.name: i for i, column in enumerate(plan.columns)}
        self._dependent = {f.name for f in plan.row_dependent}
        self._cells = [self._cell(field, key) for field, key in columns]

    def cells(self, row: Sequence[Any]) -> list[Any]:
        return [cell(row) for cell in self._cells]

    def lines(self, rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
        cells = self._cells
        return [[cell(row) for cell in cells] for row in rows]

    # -- compiling one column -------------------------------------------------------------

    def _guarded(self, name: str, read: Cell) -> Cell:
        """`read`, or nothing on rows where the caller may not see `name`."""
        if name not in self._dependent:
            return read
        can = self._position[f"_can_{name}"]
        return lambda row: read(row) if row[can] else None

    def _cell(self, field: FieldSpec | None, custom_key: str | None) -> Cell:
        position = self._position
        if field is None:
            pk, type_name = position["_pk"], self._plan.spec.type_name
            return lambda row: to_global_id(type_name, row[pk])
        if custom_key is not None:
            return self._custom(field, custom_key)
        if field.column is not None:
            at, convert = position[field.name], self._materialiser.converter(field)

            def value(row: Sequence[Any]) -> Any:
                stored = row[at]
                return None if stored is None else convert(stored)

            return self._guarded(field.name, value)
        assert field.foreign_key is not None and field.target is not None
        key_at, target = position[f"_{field.foreign_key}"], field.target

        def reference(row: Sequence[Any]) -> Any:
            key = row[key_at]
            return None if key is None else to_global_id(target, key)

        return self._guarded(field.name, reference)

    def _custom(self, pseudo: FieldSpec, key: str) -> Cell:
        """A custom field's column: its key of the row's `customFields`, decrypted if
        sensitive; SQL left out a key denied on the row (`plan_custom_fields`)."""
        container = self._plan.spec.fields[CUSTOM_FIELDS]
        at = self._position[container.name]
        # the container's converter, on this key alone: decrypted exactly as a read is
        convert = self._materialiser.converter(container)

        def value(row: Sequence[Any]) -> Any:
            found = (row[at] or {}).get(key)
            return None if found is None else convert({key: found})[key]

        return self._guarded(pseudo.name, value)
