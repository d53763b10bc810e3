"""Customer input: normalisation of each field and the rules that tie fields together.

Rules (issue 6): a COMPANY needs name, industry and region; a PERSON needs a name and a phone or
an e-mail. `creditCode` belongs to companies, `idNumber` to persons. Region, industry, source
and tags come from the controlled vocabularies and are stored in canonical form.

`validate_customer_input` checks a create (or, with `partial=True`, only the keys present);
`validate_customer_patch` checks an update against the stored record so that the merged result
still satisfies the per-kind rules. Both raise `ValidationFailed` with every error found.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from enum import StrEnum
from functools import partial
from typing import Any

from validation.amounts import normalise_amount
from validation.credit_code import normalise_credit_code
from validation.email import normalise_email
from validation.errors import ErrorCollector, FieldError, Rule
from validation.fields import FieldSpec, choice, normalise_fields, present_keys, text_list
from validation.identity_number import normalise_id_number
from validation.phone import normalise_phone
from validation.text import normalise_line, normalise_paragraph
from validation.vocabulary import Vocabularies

MAX_TAGS = 20


class CustomerKind(StrEnum):
    COMPANY = "COMPANY"
    PERSON = "PERSON"


class CustomerLevel(StrEnum):
    A = "A"  # high value
    B = "B"  # potential
    C = "C"  # normal


_KIND_ALIASES = {
    "公司": CustomerKind.COMPANY,
    "企业": CustomerKind.COMPANY,
    "单位": CustomerKind.COMPANY,
    "个人": CustomerKind.PERSON,
    "自然人": CustomerKind.PERSON,
}
_LEVEL_ALIASES = {
    "高价值": CustomerLevel.A,
    "潜力": CustomerLevel.B,
    "潜在": CustomerLevel.B,
    "普通": CustomerLevel.C,
}

# fields each kind must have after every create and update, by API name
REQUIRED_BY_KIND: Mapping[CustomerKind, tuple[str, ...]] = {
    CustomerKind.COMPANY: ("name", "industry", "region"),
    CustomerKind.PERSON: ("name",),
}
# fields that make no sense for the other kind
ONLY_FOR_KIND: Mapping[str, CustomerKind] = {
    "creditCode": CustomerKind.COMPANY,
    "idNumber": CustomerKind.PERSON,
}


@dataclass(frozen=True, kw_only=True)
class NormalisedCustomer:
    """Validated customer values in stored form; `present` names the attributes given.

    Attributes not in `present` were not part of the input (a patch leaves them unchanged).
    `phone` and `id_number` are clear text here: the writer encrypts them.
    """

    name: str | None = None
    kind: CustomerKind | None = None
    industry: str | None = None
    region: str | None = None
    level: CustomerLevel | None = None
    source: str | None = None
    tags: tuple[str, ...] | None = None
    credit_code: str | None = None
    phone: str | None = None
    email: str | None = None
    id_number: str | None = None
    address: str | None = None
    total_spend: Decimal | None = None
    present: frozenset[str] = frozenset()

    def changes(self) -> dict[str, Any]:
        """Attribute → value for the given fields, ready for the model (tags as a list)."""
        values = {name: getattr(self, name) for name in self.present}
        if values.get("tags") is not None:
            values["tags"] = list(values["tags"])
        return values


CUSTOMER_ATTRIBUTES = tuple(f.name for f in fields(NormalisedCustomer) if f.name != "present")


def customer_fields(vocabularies: Vocabularies) -> tuple[FieldSpec, ...]:
    """The customer's field specs, bound to the current vocabularies."""

    def tags(value: Any, field: str) -> tuple[str, ...]:
        collector = ErrorCollector()
        found: dict[str, None] = {}
        for item in text_list(value, field):
            canonical = collector.run(partial(vocabularies.tag.canonical, item))
            if canonical is not None:
                found.setdefault(canonical, None)
        if len(found) > MAX_TAGS:
            collector.add(FieldError(field, Rule.LENGTH, f"at most {MAX_TAGS} tags"))
        collector.raise_if_any()
        return tuple(found)

    return (
        FieldSpec("name", "name", lambda v, f: normalise_line(v, f, max_length=300), required=True),
        FieldSpec(
            "kind",
            "kind",
            choice(CustomerKind, _KIND_ALIASES),
            default=CustomerKind.COMPANY,
            has_default=True,
        ),
        FieldSpec("industry", "industry", lambda v, f: vocabularies.industry.canonical(v)),
        FieldSpec("region", "region", lambda v, f: vocabularies.region.canonical(v)),
        FieldSpec(
            "level",
            "level",
            choice(CustomerLevel, _LEVEL_ALIASES),
            default=CustomerLevel.C,
            has_default=True,
        ),
        FieldSpec("source", "source", lambda v, f: vocabularies.source.canonical(v)),
        FieldSpec("tags", "tags", tags, default=(), has_default=True),
        FieldSpec("creditCode", "credit_code", lambda v, f: normalise_credit_code(v, field=f)),
        FieldSpec("phone", "phone", lambda v, f: normalise_phone(v, field=f)),
        FieldSpec("email", "email", lambda v, f: normalise_email(v, field=f)),
        FieldSpec("idNumber", "id_number", lambda v, f: normalise_id_number(v, field=f)),
        FieldSpec("address", "address", lambda v, f: normalise_paragraph(v, f, max_length=500)),
        FieldSpec("totalSpend", "total_spend", lambda v, f: normalise_amount(v, field=f)),
    )


_API_NAME = {
    "name": "name",
    "kind": "kind",
    "industry": "industry",
    "region": "region",
    "level": "level",
    "source": "source",
    "tags": "tags",
    "credit_code": "creditCode",
    "phone": "phone",
    "email": "email",
    "id_number": "idNumber",
    "address": "address",
    "total_spend": "totalSpend",
}


_ATTRIBUTE = {name: attribute for attribute, name in _API_NAME.items()}


def _check_kind_rules(merged: Mapping[str, Any], errors: ErrorCollector) -> None:
    """Per-kind requirements on the record as it will be stored (attribute-keyed).

    On a patch an error may name a field the patch did not touch: that is the field to fill.
    """
    reported = {error.field for error in errors.errors}
    if "kind" in reported:
        return  # with the kind itself wrong, its rules say nothing useful
    kind = CustomerKind(merged.get("kind") or CustomerKind.COMPANY)
    found = ErrorCollector()
    for field in REQUIRED_BY_KIND[kind]:
        if not merged.get(_ATTRIBUTE[field]):
            found.add(FieldError(field, Rule.REQUIRED, f"is required for a {kind} customer"))
    if kind is CustomerKind.PERSON and not merged.get("phone") and not merged.get("email"):
        found.add(
            FieldError("phone", Rule.REQUIRED_ONE_OF, "a PERSON customer needs a phone or an email")
        )
    for field, owner in ONLY_FOR_KIND.items():
        if owner is not kind and merged.get(_ATTRIBUTE[field]):
            found.add(FieldError(field, Rule.NOT_ALLOWED, f"only a {owner} customer has a {field}"))
    # a field already refused (blank, malformed) is not reported a second time as missing
    errors.errors.extend(error for error in found.errors if error.field not in reported)


def validate_customer_input(
    data: Mapping[str, Any],
    *,
    vocabularies: Vocabularies,
    partial: bool = False,
    ignore: Collection[str] = (),
) -> NormalisedCustomer:
    """Normalise a customer input; raise `ValidationFailed` listing every bad field.

    With `partial=False` (create) absent fields take their defaults (kind COMPANY, level C, no
    tags) and the per-kind rules apply. With `partial=True` only present keys are checked; use
    `validate_customer_patch` to check the merged record of an update. Keys in `ignore` (ids,
    `force`, `expectedUpdatedAt` …) are left to the caller.
    """
    errors = ErrorCollector()
    values = normalise_fields(
        data, customer_fields(vocabularies), errors, partial=partial, ignore=ignore
    )
    if not partial:
        _check_kind_rules(values, errors)
    errors.raise_if_any()
    return NormalisedCustomer(**values, present=frozenset(values))


def validate_customer_patch(
    existing: Mapping[str, Any],
    patch: Mapping[str, Any],
    *,
    vocabularies: Vocabularies,
    ignore: Collection[str] = (),
) -> NormalisedCustomer:
    """Normalise an update and check the record it would produce; only the patch is returned.

    `existing` is the stored record keyed by attribute or API name; its values are trusted
    (only their presence and `kind` are read), so `phone`/`idNumber` may be any non-empty
    marker when the caller does not want to decrypt them.
    """
    errors = ErrorCollector()
    specs = customer_fields(vocabularies)
    values = normalise_fields(patch, specs, errors, partial=True, ignore=ignore)
    merged = {**present_keys(existing, specs), **values}
    _check_kind_rules(merged, errors)
    errors.raise_if_any()
    return NormalisedCustomer(**values, present=frozenset(values))


def merge_customer_values(keep: Mapping[str, Any], merge: Mapping[str, Any]) -> dict[str, Any]:
    """For `mergeCustomers`: the kept record's empty fields filled from the merged one.

    Attribute-keyed in and out; tags are united (kept ones first). Only customer attributes
    are considered; ids, owners and timestamps stay the caller's business. A field that only
    the other kind may have (`id_number` of a person merged into a company) is not copied.
    """
    kind = keep.get("kind") or CustomerKind.COMPANY
    foreign = {_ATTRIBUTE[field] for field, owner in ONLY_FOR_KIND.items() if owner != kind}
    filled: dict[str, Any] = {}
    for attribute in CUSTOMER_ATTRIBUTES:
        if attribute in foreign or attribute == "kind":
            continue
        if attribute == "tags":
            union = list(dict.fromkeys([*(keep.get("tags") or ()), *(merge.get("tags") or ())]))
            if union != list(keep.get("tags") or ()):
                filled["tags"] = union
        elif attribute == "total_spend":
            continue  # spend is history, not a fact to copy; the caller decides to add it up
        elif not keep.get(attribute) and merge.get(attribute):
            filled[attribute] = merge[attribute]
    return filled
