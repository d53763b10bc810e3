"""The 3C data-quality score of a customer: complete, current, accurate (issue 6).

    complete  50 points: required fields of its kind (30) and recommended fields (20) filled
    current   25 points: updated within 90 days, 30 for level A customers (they change faster
              and matter more)
    accurate  25 points: the share of filled validated fields (credit code, phone, e-mail, id
              number, vocabulary fields) that pass today's rules

Records imported or written before a rule existed can fail it, which is what "accurate" shows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from validation.credit_code import is_valid_credit_code
from validation.customer import CustomerKind, CustomerLevel
from validation.email import is_valid_email
from validation.errors import FieldError
from validation.identity_number import normalise_id_number
from validation.phone import is_valid_phone
from validation.vocabulary import Vocabularies, default_vocabularies

COMPLETE_REQUIRED_POINTS = 30
COMPLETE_RECOMMENDED_POINTS = 20
CURRENT_POINTS = 25
ACCURATE_POINTS = 25
STALE_AFTER = timedelta(days=90)
STALE_AFTER_LEVEL_A = timedelta(days=30)

# API field name → attribute, for both namings of the input mapping
_ATTRIBUTES = {
    "name": "name",
    "industry": "industry",
    "region": "region",
    "source": "source",
    "tags": "tags",
    "creditCode": "credit_code",
    "phone": "phone",
    "email": "email",
    "idNumber": "id_number",
    "address": "address",
    "updatedAt": "updated_at",
    "level": "level",
    "kind": "kind",
}
REQUIRED: Mapping[CustomerKind, tuple[str, ...]] = {
    CustomerKind.COMPANY: ("name", "industry", "region"),
    CustomerKind.PERSON: ("name", "phone|email"),
}
RECOMMENDED: Mapping[CustomerKind, tuple[str, ...]] = {
    CustomerKind.COMPANY: ("creditCode", "phone", "email", "address", "source"),
    CustomerKind.PERSON: ("phone", "email", "region", "address", "source"),
}


@dataclass(frozen=True)
class Quality:
    """`missing` lists empty required then recommended fields (API names); `invalid` the
    filled fields that fail validation."""

    score: int
    missing: list[str] = field(default_factory=list)
    stale: bool = False
    invalid: list[str] = field(default_factory=list)


def _value(customer: Mapping[str, Any], name: str) -> Any:
    if name in customer:
        return customer[name]
    return customer.get(_ATTRIBUTES.get(name, name))


def _filled(customer: Mapping[str, Any], name: str) -> bool:
    return any(bool(_value(customer, part)) for part in name.split("|"))


def _passes(check: Callable[[Any], Any], value: Any) -> bool:
    try:
        check(value)
    except FieldError:
        return False
    return True


def quality(
    customer: Mapping[str, Any], now: datetime, *, vocabularies: Vocabularies | None = None
) -> Quality:
    """Score a stored customer (keys as attributes or API names, phone and id in clear text).

    Pass the current `vocabularies` (with admin additions) to judge region, industry, source
    and tags; without them the built-in vocabularies are used.
    """
    vocabularies = vocabularies or default_vocabularies()
    try:
        kind = CustomerKind(_value(customer, "kind") or CustomerKind.COMPANY)
    except ValueError:
        kind = CustomerKind.COMPANY

    missing_required = [name for name in REQUIRED[kind] if not _filled(customer, name)]
    missing_recommended = [name for name in RECOMMENDED[kind] if not _filled(customer, name)]
    complete = COMPLETE_REQUIRED_POINTS * (1 - len(missing_required) / len(REQUIRED[kind]))
    complete += COMPLETE_RECOMMENDED_POINTS * (
        1 - len(missing_recommended) / len(RECOMMENDED[kind])
    )

    level = _value(customer, "level")
    window = STALE_AFTER_LEVEL_A if level == CustomerLevel.A else STALE_AFTER
    updated = _value(customer, "updatedAt")
    stale = not isinstance(updated, datetime) or now - updated > window

    checks: dict[str, Callable[[Any], bool]] = {
        "creditCode": is_valid_credit_code,
        "phone": is_valid_phone,
        "email": is_valid_email,
        "idNumber": lambda value: _passes(normalise_id_number, value),
        "region": lambda value: vocabularies.region.lookup(str(value)) == value,
        "industry": lambda value: vocabularies.industry.lookup(str(value)) == value,
        "source": lambda value: vocabularies.source.lookup(str(value)) == value,
        "tags": lambda value: all(vocabularies.tag.lookup(str(tag)) == tag for tag in value),
    }
    filled = {name: _value(customer, name) for name in checks if _filled(customer, name)}
    invalid = [name for name, value in filled.items() if not checks[name](value)]
    accurate = ACCURATE_POINTS * (1 - len(invalid) / len(filled)) if filled else ACCURATE_POINTS

    score = round(complete + (0 if stale else CURRENT_POINTS) + accurate)
    missing = [
        part
        for name in (*missing_required, *missing_recommended)
        for part in name.split("|")
        if not _filled(customer, part)
    ]
    return Quality(score=score, missing=list(dict.fromkeys(missing)), stale=stale, invalid=invalid)
