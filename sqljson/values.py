"""SQL expressions that write values exactly as graphql-core writes them in a response."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Text, case, cast, func, literal_column, null

from resolvers.records import FieldSpec, RecordSpec

# only names of the schema and of the document (GraphQL names) are written into SQL as text
_SAFE_TEXT = re.compile(r"[A-Za-z0-9_.:$+=-]*")
MAX_JSON_PAIRS = 50  # json_build_object takes at most 100 arguments
ENCRYPTED_KEY = "$enc"


class NotCompilableError(Exception):
    """This operation (or this part of it) is answered by the direct executor instead."""


def constant(value: str) -> ColumnElement[str]:
    """A text constant inlined in the statement (field names, type names, labels)."""
    if not _SAFE_TEXT.fullmatch(value):
        raise NotCompilableError(f"unexpected text {value!r}")
    return literal_column(f"'{value}'", Text)


EMPTY_LIST = literal_column("'[]'::json")


def json_object(pairs: Sequence[tuple[str, ColumnElement[Any]]]) -> ColumnElement[Any]:
    if not pairs or len(pairs) > MAX_JSON_PAIRS:
        raise NotCompilableError("object too wide for json_build_object")
    arguments: list[ColumnElement[Any]] = []
    for key, value in pairs:
        arguments.extend((constant(key), value))
    return func.json_build_object(*arguments)


def b64url(text: ColumnElement[Any]) -> ColumnElement[str]:
    """base64url without padding, as `schema.node.to_global_id` and cursors write it.

    PostgreSQL's base64 wraps lines at 76 characters; translate drops the newlines.
    """
    encoded = func.encode(func.convert_to(text, constant("UTF8")), constant("base64"))
    return func.rtrim(
        func.translate(encoded, literal_column("E'+/\\n'"), constant("-_")), constant("=")
    )


def global_id(type_name: str, pk: ColumnElement[Any]) -> ColumnElement[str]:
    return b64url(func.concat(constant(f"{type_name}:"), pk))


def iso_timestamp(value: ColumnElement[Any]) -> ColumnElement[str]:
    """`datetime.isoformat()` of a UTC timestamp: microseconds only when there are any.

    One `to_char` with the microseconds, dropped again when they are all zero: the three
    `to_char` calls this took before cost ~5 % of the nested view's statement (pgbench).
    NULL stays NULL.
    """
    utc = func.timezone(constant("UTC"), value)
    written = func.to_char(utc, literal_column('\'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"\''))
    return func.replace(written, constant(".000000+"), constant("+"))


def _python_type(spec: RecordSpec, field: FieldSpec) -> type:
    assert field.column is not None
    return spec.table.c[field.column].type.python_type  # type: ignore[no-any-return]


def field_value(spec: RecordSpec, field: FieldSpec, column: ColumnElement[Any]) -> Any:
    """The JSON value of one scalar field, as `sqljson.direct` would output it."""
    if field.is_custom:
        return column  # JSON built by `resolvers.masking.plan_custom_fields`, keys masked
    if field.encrypted_as is not None:
        # decrypted in Python after the statement (keys never reach the database): a marker
        # object no text value can produce — inside a JSON string every `"` is escaped
        marked = func.json_build_object(
            constant(ENCRYPTED_KEY), constant(field.encrypted_as), constant("v"), column
        )
        return case((column.is_(None), null()), else_=marked)
    enum = getattr(field.convert, "enum", None)
    if field.convert is not None:
        if enum is None:
            raise NotCompilableError(f"converter of {field.name}")
        renamed = {m.value: m.name for m in enum if m.value != m.name}
        if renamed:
            whens = [(column == constant(value), constant(name)) for value, name in renamed.items()]
            return case(*whens, else_=column)
        return column
    python_type = _python_type(spec, field)
    if python_type in (str, int, bool, list):
        return column
    if python_type is Decimal:
        return cast(column, Text)
    if python_type is dt.datetime:
        return iso_timestamp(column)
    if python_type is dt.date:
        return func.to_char(column, constant("YYYY-MM-DD"))
    raise NotCompilableError(f"type of {spec.type_name}.{field.name}")


def sort_cursor(holds: type, sort: ColumnElement[Any], pk: ColumnElement[Any]) -> Any:
    """`resolvers.pagination.encode_cursor(sort, pk)` in SQL, by the ordering's value type."""
    if holds is int:
        tag, text = "i", sort
    elif holds is dt.datetime:
        tag, text = "t", iso_timestamp(sort)
    elif holds is Decimal:
        tag, text = "d", cast(sort, Text)
    elif holds is str:
        tag, text = "s", sort
    else:
        raise NotCompilableError(f"cursor of {holds}")
    return b64url(
        case(
            (sort.is_(None), func.concat(constant("n::"), pk)),
            else_=func.concat(constant(f"{tag}:"), text, constant(":"), pk),
        )
    )


def child_cursor(pk: ColumnElement[Any]) -> Any:
    """Nested connections page by id alone: `encode_cursor(None, pk)`."""
    return b64url(func.concat(constant("n::"), pk))
