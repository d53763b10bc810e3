"""`auditIntegrity`: the chain and digest status, and "verify now", for readers of the audit.

The same checks as `dossier audit verify` (`audit.verify.verify_chain`, and with the public
keys of `DOSSIER_AUDIT_VERIFY_KEY` `audit.digests.verify_digests`), run on the request's own
session. Needs READ on `audit`; looking is audited as a read of `audit` like `auditEvents`.
"""

from __future__ import annotations

import os

import strawberry
from sqlalchemy import func, select

from audit.digests import DigestKeyError, public_key_from_text, verify_digests
from audit.verify import verify_chain
from db.models.audit import AuditChainHead, AuditDigest
from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.errors import BadUserInputError
from resolvers.writes import require
from schema.audit_integrity import AuditIntegrity, ChainCheck, DigestCheck

OPERATION = "auditIntegrity"
# read here rather than from Settings: the CLI reads the same variable, and the keys are
# public (they verify, they cannot sign)
VERIFY_KEY = "DOSSIER_AUDIT_VERIFY_KEY"


def _verification_keys() -> list[object]:
    given = [part for part in os.environ.get(VERIFY_KEY, "").split(",") if part.strip()]
    try:
        return [public_key_from_text(value) for value in given]
    except DigestKeyError as error:
        raise BadUserInputError(f"{VERIFY_KEY}: {error}") from None


async def audit_integrity(context: RequestContext, verify: bool) -> AuditIntegrity:
    require(context, Resource.AUDIT, Action.READ, OPERATION)
    keys = _verification_keys()
    chain = digests = None
    async with context.db.lock:
        session = context.db.session
        head = (await session.execute(select(AuditChainHead.seq, AuditChainHead.hash))).first()
        count, latest = (
            await session.execute(select(func.count(), func.max(AuditDigest.id)))
        ).one()
        latest_row = None
        if latest is not None:
            latest_row = (
                await session.execute(
                    select(AuditDigest.head_seq, AuditDigest.signed_at).where(
                        AuditDigest.id == latest
                    )
                )
            ).first()
        if verify:
            report = await verify_chain(session)
            chain = ChainCheck(
                ok=report.ok,
                checked=report.checked,
                first_bad_seq=report.first_bad_seq,
                problem=report.problem.value if report.problem else None,
                detail=report.detail,
                seconds=round(report.seconds, 3),
                summary=report.describe(),
            )
            if keys:
                found = await verify_digests(session, keys)  # type: ignore[arg-type]  # checked keys
                digests = DigestCheck(
                    ok=found.ok,
                    checked=found.checked,
                    first_bad_id=found.first_bad_id,
                    problem=found.problem.value if found.problem else None,
                    detail=found.detail,
                    summary=found.describe(),
                )
    context.reads.note(Resource.AUDIT.value, (), [OPERATION])
    return AuditIntegrity(
        head_seq=head.seq if head else None,
        head_hash=head.hash if head else None,
        digest_count=int(count),
        latest_digest_seq=latest_row.head_seq if latest_row else None,
        latest_digest_signed_at=latest_row.signed_at if latest_row else None,
        verification_keys=len(keys),
        chain=chain,
        digests=digests,
    )


@strawberry.type
class AuditIntegrityQuery:
    @strawberry.field(
        description="The audit chain head and signed digests; with verify: true, the chain "
        "(and, with verification keys, every digest) is checked now. Needs READ on `audit`."
    )
    async def audit_integrity(self, info: strawberry.Info, verify: bool = False) -> AuditIntegrity:
        return await audit_integrity(info.context, verify)
