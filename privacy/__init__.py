"""Personal information (issue 23): consents, access reports and erasure."""

from __future__ import annotations

import strawberry

from bulk.operations import runtime_of
from privacy.erasure import erase_customer
from privacy.report import personal_data_report
from privacy.requirements import (
    consent_requirements,
    remove_consent_requirement,
    require_consent,
)
from resolvers.consents import record_consent, withdraw_consent
from schema.bulk import Export
from schema.privacy import Consent, ConsentRequirement, ConsentRequirementInput

REPORT_SECTIONS = ["customer", "contacts", "interactions", "tickets", "opportunities",
                   "consents", "auditEvents"]  # fmt: skip


@strawberry.type
class PrivacyMutation:
    @strawberry.mutation(
        description="Record the customer's consent to `purpose` (needs UPDATE on the customer). "
        "An active consent for the purpose is kept as it is."
    )
    async def record_consent(
        self, info: strawberry.Info, customer_id: strawberry.ID, purpose: str,
        evidence: str | None = None,
    ) -> Consent | None:  # fmt: skip
        return await record_consent(info.context, customer_id, purpose, evidence)

    @strawberry.mutation(description="Withdraw the active consent; null when there was none.")
    async def withdraw_consent(
        self, info: strawberry.Info, customer_id: strawberry.ID, purpose: str
    ) -> Consent | None:
        return await withdraw_consent(info.context, customer_id, purpose)

    @strawberry.mutation(
        description="Everything held on the person and every audit event that read or changed "
        "it, as one JSON download (one-time url). Needs READ on privacy; audited as an EXPORT."
    )
    async def personal_data_report(
        self, info: strawberry.Info, customer_id: strawberry.ID
    ) -> Export | None:
        download, events, sha256 = await personal_data_report(
            info.context, runtime_of(info.context), customer_id
        )
        return Export(
            id=strawberry.ID(str(download.id)),
            row_count=events,
            url=download.url,
            fields=REPORT_SECTIONS,
            format="JSON",
            sha256=sha256,
            expires_at=download.expires_at,
        )

    @strawberry.mutation(
        description="Erase the person's personal data (needs DELETE on privacy): values are "
        "overwritten, blind indexes removed, the trail (which never held them) still verifies. "
        "False when the customer was erased before."
    )
    async def erase_customer(self, info: strawberry.Info, id: strawberry.ID, reason: str) -> bool:
        return await erase_customer(info.context, id, reason)

    @strawberry.mutation(
        description="Make reading or exporting fields need the customer's active consent to a "
        "purpose (policy data: needs CREATE on policy, audited, effective on the next request)."
    )
    async def require_consent(
        self, info: strawberry.Info, requirement: ConsentRequirementInput
    ) -> ConsentRequirement:
        return await require_consent(info.context, requirement)

    @strawberry.mutation(description="Drop a consent requirement; false when there was none.")
    async def remove_consent_requirement(
        self, info: strawberry.Info, requirement: ConsentRequirementInput
    ) -> bool:
        return await remove_consent_requirement(info.context, requirement)


@strawberry.type
class PrivacyQuery:
    @strawberry.field(description="Every consent requirement. Needs READ on `policy`.")
    def consent_requirements(self, info: strawberry.Info) -> list[ConsentRequirement]:
        return consent_requirements(info.context)


__all__ = ["PrivacyMutation", "PrivacyQuery"]
