"""Values of custom fields, checked against their definitions (type, options, required).

Every error names the key as `customFields.<key>`, and all of an input's errors are reported
at once, as the built-in validators do. A key that no definition names is refused, and so is a
retired one: its definition stays so that its old values keep their meaning, but nobody may
write it any more.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from policy.custom_fields import CustomFieldType, FieldDefinition
from validation.errors import FieldError, Rule, ValidationFailed

MAX_TEXT = 2000


def _name(key: str) -> str:
    return f"customFields.{key}"


def normalise_value(definition: FieldDefinition, value: Any) -> Any:
    """The value as stored (JSON), or a `FieldError` naming the key."""
    name, kind = _name(definition.key), definition.type
    if kind is CustomFieldType.TEXT:
        if not isinstance(value, str):
            raise FieldError(name, Rule.TYPE, "expected text")
        text = value.strip()
        if len(text) > MAX_TEXT:
            raise FieldError(name, Rule.LENGTH, f"at most {MAX_TEXT} characters")
        return text
    if kind is CustomFieldType.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise FieldError(name, Rule.TYPE, "expected a number")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise FieldError(name, Rule.TYPE, "expected a number") from None
        if not number.is_finite() or (isinstance(value, float) and not math.isfinite(value)):
            raise FieldError(name, Rule.TYPE, "expected a finite number")
        as_int = int(number)
        return as_int if number == as_int and abs(as_int) < 2**53 else float(number)
    if kind is CustomFieldType.DATE:
        if not isinstance(value, str):
            raise FieldError(name, Rule.TYPE, "expected a date YYYY-MM-DD")
        try:
            return dt.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            raise FieldError(name, Rule.FORMAT, "expected a date YYYY-MM-DD") from None
    if kind is CustomFieldType.BOOLEAN:
        if not isinstance(value, bool):
            raise FieldError(name, Rule.TYPE, "expected true or false")
        return value
    if kind is CustomFieldType.CHOICE:
        if not isinstance(value, str) or value.strip() not in definition.options:
            raise FieldError(name, Rule.ENUM, "not one of the options", definition.options)
        return value.strip()
    # MULTI_CHOICE
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FieldError(name, Rule.TYPE, "expected a list of options")
    chosen = list(dict.fromkeys(v.strip() for v in value))
    unknown = [v for v in chosen if v not in definition.options]
    if unknown:
        raise FieldError(name, Rule.ENUM, f"{unknown[0]!r} is not one of the options",
                         definition.options)  # fmt: skip
    return chosen


def validate_custom_values(
    definitions: Mapping[str, FieldDefinition],
    given: Mapping[str, Any] | None,
    stored: Mapping[str, Any],
    *,
    creating: bool,
) -> dict[str, Any]:
    """The keys an input changes, normalised (None: the key is cleared).

    `definitions`: every definition of the resource by key, retired ones included;
    `stored`: the record's present values (only which keys are set matters).
    """
    errors: list[FieldError] = []
    changes: dict[str, Any] = {}
    if given is not None and not isinstance(given, Mapping):
        raise ValidationFailed([FieldError("customFields", Rule.TYPE, "expected an object")])
    for key, value in (given or {}).items():
        definition = definitions.get(key)
        if definition is None:
            errors.append(FieldError(_name(key), Rule.UNKNOWN_FIELD, "no such custom field"))
            continue
        if definition.retired:
            errors.append(FieldError(_name(key), Rule.NOT_ALLOWED, "the custom field is retired"))
            continue
        if value is None:
            changes[key] = None
            continue
        try:
            changes[key] = normalise_value(definition, value)
        except FieldError as error:
            errors.append(error)
    for key, definition in sorted(definitions.items()):
        if not definition.required or definition.retired:
            continue
        present = changes[key] is not None if key in changes else stored.get(key) is not None
        if not present and (creating or key in changes):
            errors.append(FieldError(_name(key), Rule.REQUIRED, "required"))
    if errors:
        raise ValidationFailed(errors)
    return changes


_TRUE = frozenset({"true", "yes", "y", "1", "是", "对", "√"})
_FALSE = frozenset({"false", "no", "n", "0", "否", "不", "×"})
_SEPARATORS = (";", "；", ",", "，", "、", "|")


def cell_value(definition: FieldDefinition | None, text: str) -> Any:
    """A spreadsheet cell as the JSON value an API caller would send for that field."""
    if definition is None:
        return text  # refused as an unknown key by `validate_custom_values`
    if definition.type is CustomFieldType.BOOLEAN:
        folded = text.strip().casefold()
        if folded in _TRUE:
            return True
        if folded in _FALSE:
            return False
        return text  # refused with the type error
    if definition.type is CustomFieldType.MULTI_CHOICE:
        parts = [text]
        for separator in _SEPARATORS:
            parts = [piece for part in parts for piece in part.split(separator)]
        return [part.strip() for part in parts if part.strip()]
    return text


def options_of(values: Sequence[str] | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip() for v in (values or ()) if v.strip()))
