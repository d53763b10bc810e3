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
