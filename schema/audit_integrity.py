"""Types of `auditIntegrity`: the chain head, the signed digests, and a verification's result."""

from __future__ import annotations

from datetime import datetime

import strawberry


@strawberry.type(description="The result of recomputing the hash chain (`dossier audit verify`).")
class ChainCheck:
    ok: bool
    checked: int
    first_bad_seq: int | None
    problem: str | None
    detail: str | None
    seconds: float
    summary: str


@strawberry.type(description="The result of checking every signed digest against the keys.")
class DigestCheck:
    ok: bool
    checked: int
    first_bad_id: int | None
    problem: str | None
    detail: str | None
    summary: str


@strawberry.type(description="Where the audit chain stands; checks only when asked to verify.")
class AuditIntegrity:
    head_seq: int | None
    head_hash: str | None
    digest_count: int
    latest_digest_seq: int | None
    latest_digest_signed_at: datetime | None
    verification_keys: int = strawberry.field(
        description="Public keys configured to check digests with (DOSSIER_AUDIT_VERIFY_KEY)"
    )
    chain: ChainCheck | None = strawberry.field(description="null unless verify: true")
    digests: DigestCheck | None = strawberry.field(
        description="null unless verify: true and verification keys are configured"
    )
