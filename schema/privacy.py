"""Consent records (CONTRACT.md, "Personal information")."""

from __future__ import annotations

from datetime import datetime

import strawberry


@strawberry.type(
    description="A customer's consent to one purpose; withdrawn once withdrawnAt is set."
)
class Consent:
    purpose: str | None = None
    granted_at: datetime | None = None
    withdrawn_at: datetime | None = None
    evidence: str | None = None


@strawberry.type(
    description="Reading (READ) or exporting (EXPORT) the fields `resource` names needs the "
    "customer's active consent to `purpose`; a READ requirement also binds exports."
)
class ConsentRequirement:
    resource: str
    action: str
    purpose: str


@strawberry.input
class ConsentRequirementInput:
    resource: str = strawberry.field(description="Fields, as in rules: `customer.email`.")
    action: str = strawberry.field(description="READ or EXPORT.")
    purpose: str
