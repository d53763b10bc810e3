"""Contact input: a person at a customer; a name, optionally a title, phone and e-mail."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from validation.email import normalise_email
from validation.errors import ErrorCollector
from validation.fields import FieldSpec, boolean, normalise_fields
from validation.phone import normalise_phone
from validation.text import normalise_line

CONTACT_FIELDS = (
    FieldSpec("name", "name", lambda v, f: normalise_line(v, f, max_length=200), required=True),
    FieldSpec("title", "title", lambda v, f: normalise_line(v, f, max_length=200)),
    FieldSpec("phone", "phone", lambda v, f: normalise_phone(v, field=f)),
    FieldSpec("email", "email", lambda v, f: normalise_email(v, field=f)),
    FieldSpec("isDecisionMaker", "is_decision_maker", boolean, default=False, has_default=True),
)


@dataclass(frozen=True, kw_only=True)
class NormalisedContact:
    """Validated contact values; `present` names the attributes given (phone in clear text)."""

    name: str | None = None
    title: str | None = None
    phone: str | None = None
    email: str | None = None
    is_decision_maker: bool | None = None
    present: frozenset[str] = frozenset()

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.present}


def validate_contact_input(
    data: Mapping[str, Any], *, partial: bool = False, ignore: Collection[str] = ()
) -> NormalisedContact:
    """Normalise a contact create (or, with `partial=True`, an update); `ValidationFailed` lists
    every bad field. A patch cannot clear the name: it is `required`."""
    errors = ErrorCollector()
    values = normalise_fields(data, CONTACT_FIELDS, errors, partial=partial, ignore=ignore)
    errors.raise_if_any()
    return NormalisedContact(**values, present=frozenset(values))
