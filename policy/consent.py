"""Consent requirements: policy lines saying a field needs the person's consent to a purpose.

A line `("c", "<resource>.<field pattern>", "<READ|EXPORT>", "<purpose>")` in `policy_rules`
— administered with `requireConsent` / `removeConsentRequirement`, versioned and reloaded with
every other rule — narrows what the roles' rules allow: the field is readable (or exportable)
only on rows whose customer holds an active consent for the purpose. A READ requirement also
binds exports (an export needs READ ∧ EXPORT); an EXPORT requirement binds exports only.

The narrowing is a row predicate (`Consented`) compiled into the read's own statement as an
`EXISTS` on `consents`, so withdrawing a consent hides the field on the next read, with no
policy reload and no extra statement. Python-side checks (`holds_for`) cannot see consents and
answer no: a path that decides per row in Python withholds the field rather than guess.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists

from db.models import Consent
from policy.predicates import Predicate, ScopeColumns
from policy.vocabulary import Action

CONSENT_PTYPE = "c"
BINDING = {
    Action.READ: (Action.READ,),
    Action.EXPORT: (Action.READ, Action.EXPORT),  # an EXPORT decision is bound by both
}


@dataclass(frozen=True)
class ConsentRequirement:
    resource: str  # a field pattern, as in rules: `customer.email`, `customer.{phone,email}`
    action: Action  # READ or EXPORT
    purpose: str

    def line(self) -> tuple[str, ...]:
        return (CONSENT_PTYPE, self.resource, self.action.value, self.purpose)


def requirements_of(lines: Iterable[Sequence[str]]) -> tuple[ConsentRequirement, ...]:
    return tuple(
        ConsentRequirement(line[1], Action(line[2]), line[3])
        for line in lines
        if line[0] == CONSENT_PTYPE
    )


@dataclass(frozen=True, slots=True)
class Consented(Predicate):
    """The row's customer holds an active consent for `purpose`."""

    purpose: str

    def holds_for(self, owner_id: int | None, department_id: int | None, customer_id: int) -> bool:
        return False  # not knowable without the database: withhold

    def sql(self, columns: ScopeColumns) -> ColumnElement[bool]:
        return exists().where(
            and_(
                Consent.customer_id == columns.customer_id,
                Consent.purpose == self.purpose,
                Consent.withdrawn_at.is_(None),
            )
        )
