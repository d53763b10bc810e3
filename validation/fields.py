"""The machinery shared by the record validators: field specs and small typed normalisers.

A record validator (customer, contact, …) is a list of `FieldSpec`s plus its cross-field rules.
`normalise_fields` applies the specs to one input mapping and collects every error.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import partial as bind
from typing import Any, TypeVar

from rapidfuzz import fuzz, process

from validation.errors import ErrorCollector, FieldError, Rule
from validation.text import fold, is_blank

E = TypeVar("E", bound=StrEnum)
Normaliser = Callable[[Any, str], Any]


@dataclass(frozen=True)
class FieldSpec:
    """One input field: its API name, its attribute/column name and how to normalise it.

    `required` fields may not be cleared on update, nor be absent on create unless they have a
    `default`, which fills an absent field on create. Fields required only for some records
    (industry for companies) are checked by the record's own rules.
    """

    name: str
    attribute: str
    normalise: Normaliser
    required: bool = False
    default: Any = None
    has_default: bool = False


def normalise_fields(
    data: Mapping[str, Any],
    specs: Sequence[FieldSpec],
    errors: ErrorCollector,
    *,
    partial: bool,
    ignore: Collection[str] = (),
) -> dict[str, Any]:
    """Attribute → normalised value for each field given (and, on create, each default).

    Keys may be the API name (`creditCode`) or the attribute (`credit_code`). A blank value
    (None, "", whitespace) means "no value": an error for required fields, None otherwise.
    Keys not in `specs` or `ignore` are UNKNOWN_FIELD errors: a misspelt import column must
    not be dropped silently.
    """
    by_key = {spec.name: spec for spec in specs} | {spec.attribute: spec for spec in specs}
    values: dict[str, Any] = {}
    for key, raw in data.items():
        if key in ignore:
            continue
        spec = by_key.get(key)
        if spec is None:
            close = process.extract(key, [s.name for s in specs], scorer=fuzz.WRatio, limit=3)
            errors.add(
                FieldError(
                    key,
                    Rule.UNKNOWN_FIELD,
                    "is not a field of this record",
                    [name for name, score, _ in close if score >= 75],
                )
            )
            continue
        if spec.attribute in values:
            errors.add(FieldError(spec.name, Rule.CONFLICT, "is given twice"))
            continue
        if is_blank(raw):
            if spec.required:
                errors.add(FieldError(spec.name, Rule.REQUIRED, "must not be blank"))
            values[spec.attribute] = None
            continue
        values[spec.attribute] = errors.run(bind(spec.normalise, raw, spec.name))
    if not partial:
        for spec in specs:
            if spec.attribute in values:
                continue
            if spec.has_default:
                values[spec.attribute] = spec.default
            elif spec.required:
                errors.add(FieldError(spec.name, Rule.REQUIRED, "is required"))
    return values


def present_keys(existing: Mapping[str, Any], specs: Sequence[FieldSpec]) -> dict[str, Any]:
    """A stored record's values keyed by attribute, whichever naming the caller used."""
    by_key = {spec.name: spec for spec in specs} | {spec.attribute: spec for spec in specs}
    return {by_key[key].attribute: value for key, value in existing.items() if key in by_key}


def choice(enum: type[E], aliases: Mapping[str, E] | None = None) -> Callable[[Any, str], E]:
    """A normaliser for a closed vocabulary: enum values case-insensitively, plus aliases."""
    table: dict[str, E] = {fold(member.value): member for member in enum}
    table |= {fold(alias): member for alias, member in (aliases or {}).items()}

    def normalise(value: Any, field: str) -> E:
        if isinstance(value, enum):
            return value
        member = table.get(fold(value)) if isinstance(value, str) else None
        if member is None:
            allowed = [member.value for member in enum]
            raise FieldError(
                field, Rule.ENUM, f"{value!r} is not one of {', '.join(allowed)}", allowed
            )
        return member

    return normalise


_TRUE = {"true", "yes", "y", "1", "是", "对", "√"}
_FALSE = {"false", "no", "n", "0", "否", "不是", "×"}


def boolean(value: Any, field: str) -> bool:
    """A boolean from `bool`, 0/1 or the words spreadsheets use (是/否, yes/no, true/false)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        key = unicodedata.normalize("NFKC", value).strip().casefold()
        if key in _TRUE:
            return True
        if key in _FALSE:
            return False
    raise FieldError(field, Rule.TYPE, f"{value!r} is not yes or no")


def integer_between(low: int, high: int) -> Callable[[Any, str], int]:
    """A normaliser for whole numbers in [low, high]; "4" and 4.0 (spreadsheets) are accepted."""

    def normalise(value: Any, field: str) -> int:
        number: int | None = None
        if isinstance(value, bool):
            number = None
        elif isinstance(value, int):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str):
            text = unicodedata.normalize("NFKC", value).strip()
            if text.isascii() and text.lstrip("+-").isdigit() and len(text) < 10:
                number = int(text)
        if number is None:
            raise FieldError(field, Rule.TYPE, f"{value!r} is not a whole number")
        if not low <= number <= high:
            raise FieldError(field, Rule.RANGE, f"must be between {low} and {high}")
        return number

    return normalise


def text_list(value: Any, field: str) -> list[str]:
    """A list of strings; one text is split on commas, semicolons and 、 (import cells)."""
    if isinstance(value, str):
        text = unicodedata.normalize("NFKC", value)
        for separator in ";、|\n":
            text = text.replace(separator, ",")
        return [part for part in (piece.strip() for piece in text.split(",")) if part]
    if isinstance(value, Iterable) and not isinstance(value, bytes | Mapping):
        items = list(value)
        if all(isinstance(item, str) for item in items):
            return items
    raise FieldError(field, Rule.TYPE, "expected a list of texts")
