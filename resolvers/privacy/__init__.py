"""Personal information (issue 23): consents, access reports and erasure."""

from __future__ import annotations

import strawberry

from resolvers.privacy.consents import record_consent, withdraw_consent
from schema.privacy import Consent


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


__all__ = ["PrivacyMutation"]
