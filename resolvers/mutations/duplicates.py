"""Likely duplicate customers: on every create and update, and as a clean-up list.

A match counts only where the caller may read both the record and the field that matched: a
DUPLICATE answer that named a record outside the caller's scope, or confirmed the phone of a
record whose phone the caller may not read, would turn the create form into a lookup oracle.
When every match is hidden the write goes through; `duplicateCandidates`, asked by someone who
sees both records, finds the pair later.

Reasons: same credit code, same phone, e-mail (case-insensitive) or identity number (through
their blind indexes: the clear values are never compared or decrypted), or a very similar
company name in the same region. Names are compared for companies only: two people called 张伟
in 北京 are not a likely duplicate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import strawberry
from rapidfuzz import fuzz, process
from sqlalchemy import ColumnElement, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from policy.predicates import Predicate, ScopeColumns
from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.errors import DuplicateError
from resolvers.pagination import checked_first, decode_cursor, encode_cursor
from resolvers.records import CUSTOMERS
from schema.duplicates import DuplicatePair, DuplicateReason
from schema.node import Connection, Edge, PageInfo, to_global_id
from validation.similarity import DUPLICATE_NAME_THRESHOLD, normalise_company_name

NAME_CUTOFF = DUPLICATE_NAME_THRESHOLD * 100  # rapidfuzz scores 0-100

# reason → (policy field that must be readable, column compared)
EXACT = {
    DuplicateReason.CREDIT_CODE: ("creditCode", CUSTOMERS.c.credit_code),
    DuplicateReason.PHONE: ("phone", CUSTOMERS.c.phone_bidx),
    DuplicateReason.EMAIL: ("email", CUSTOMERS.c.email_bidx),
    DuplicateReason.ID_NUMBER: ("idNumber", CUSTOMERS.c.id_number_bidx),
}


@dataclass(frozen=True)
class Probe:
    """The identifying values of a customer being written, in stored form."""

    name: str | None
    kind: str | None
    region: str | None
    credit_code: str | None
    phone_bidx: bytes | None
    email_bidx: bytes | None
    id_number_bidx: bytes | None

    def exact_values(self) -> dict[DuplicateReason, Any]:
        values = {
            DuplicateReason.CREDIT_CODE: self.credit_code,
            DuplicateReason.PHONE: self.phone_bidx,
            DuplicateReason.EMAIL: self.email_bidx,
            DuplicateReason.ID_NUMBER: self.id_number_bidx,
        }
        return {reason: value for reason, value in values.items() if value}


@dataclass
class Match:
    pk: int
    name: str | None = None
    reasons: list[DuplicateReason] = field(default_factory=list)
    similarity: float | None = None


def _facts(table: Any = CUSTOMERS) -> ScopeColumns:
    return ScopeColumns(table.c.owner_id, table.c.department_id, table.c.id)


def _readable(context: RequestContext, name: str) -> Predicate:
    return context.decisions.field(Resource.CUSTOMER, name, Action.READ)


async def find_duplicates(
    context: RequestContext, session: AsyncSession, probe: Probe, *, exclude: int | None = None
) -> list[Match]:
    """Existing live customers the caller may read that look like `probe`."""
    rows = context.decisions.rows(Resource.CUSTOMER, Action.READ)
    if rows.is_never:
        return []
    base: list[ColumnElement[bool]] = [rows.sql(_facts()), CUSTOMERS.c.archived_at.is_(None)]
    if exclude is not None:
        base.append(CUSTOMERS.c.id != exclude)
    found: dict[int, Match] = {}
    selects = []
    for reason, value in probe.exact_values().items():
        guard, column = EXACT[reason]
        readable = _readable(context, guard)
        if readable.is_never:
            continue
        selects.append(
            select(CUSTOMERS.c.id, literal(reason.value).label("reason")).where(
                *base, column == value, readable.sql(_facts())
            )
        )
    if selects:
        for pk, reason in (await session.execute(union_all(*selects))).all():
            found.setdefault(pk, Match(pk)).reasons.append(DuplicateReason(reason))
    if probe.name and probe.region and (probe.kind or "COMPANY") == "COMPANY":
        target = normalise_company_name(probe.name)
        readable = _readable(context, "name")
        if target and not readable.is_never:
            candidates = (
                await session.execute(
                    select(CUSTOMERS.c.id, CUSTOMERS.c.name).where(
                        *base,
                        CUSTOMERS.c.region == probe.region,
                        CUSTOMERS.c.kind == "COMPANY",
                        readable.sql(_facts()),
                    )
                )
            ).all()
            names = {pk: normalise_company_name(name) for pk, name in candidates}
            for _, score, pk in process.extract(
                target, names, scorer=fuzz.ratio, score_cutoff=NAME_CUTOFF, limit=None
            ):
                match = found.setdefault(pk, Match(pk))
                match.reasons.append(DuplicateReason.NAME)
                match.similarity = round(score / 100, 3)
    if not found:
        return []
    return await _named(context, session, sorted(found.values(), key=lambda m: m.pk))


async def _named(
    context: RequestContext, session: AsyncSession, matches: list[Match]
) -> list[Match]:
    """Names through read policy (null where withheld), and the read noted for the audit."""
    readable = _readable(context, "name")
    rows = await session.execute(
        select(
            CUSTOMERS.c.id, CUSTOMERS.c.name, CUSTOMERS.c.owner_id, CUSTOMERS.c.department_id
        ).where(CUSTOMERS.c.id.in_([m.pk for m in matches]))
    )
    by_pk = {m.pk: m for m in matches}
    for pk, name, owner, department in rows.all():
        if readable.holds_for(owner, department, pk):
            by_pk[pk].name = name
    context.reads.note(Resource.CUSTOMER.value, by_pk, ["name"])
    return matches


async def find_custom_duplicates(
    context: RequestContext, session: AsyncSession, values: dict[str, Any], exclude: int | None
) -> list[Match]:
    """Live customers the caller may read sharing a value of a custom field marked unique.

    The field must be readable on the match, as for built-in reasons; sensitive fields are
    stored encrypted with a fresh nonce, so they cannot be compared and are not used.
    """
    rows = context.decisions.rows(Resource.CUSTOMER, Action.READ)
    if rows.is_never:
        return []
    base: list[ColumnElement[bool]] = [rows.sql(_facts()), CUSTOMERS.c.archived_at.is_(None)]
    if exclude is not None:
        base.append(CUSTOMERS.c.id != exclude)
    selects = []
    for definition in context.decisions.snapshot.catalog.active(Resource.CUSTOMER):
        value = values.get(definition.key)
        if not definition.unique or definition.sensitive or value is None:
            continue
        readable = _readable(context, definition.field)
        if readable.is_never:
            continue
        selects.append(
            select(CUSTOMERS.c.id).where(
                *base,
                CUSTOMERS.c.custom_fields.contains({definition.key: value}),
                readable.sql(_facts()),
            )
        )
    if not selects:
        return []
    found = sorted({pk for (pk,) in (await session.execute(union_all(*selects))).all()})
    matches = [Match(pk, reasons=[DuplicateReason.CUSTOM_FIELD]) for pk in found]
    return await _named(context, session, matches) if matches else []


def duplicate_error(matches: Sequence[Match]) -> DuplicateError:
    return DuplicateError(
        f"Likely a duplicate of {len(matches)} existing customer(s); "
        "merge them, or pass force: true to write anyway",
        duplicates=[
            {
                "id": to_global_id("Customer", m.pk),
                "name": m.name,
                "reasons": [r.value for r in m.reasons],
                "similarity": m.similarity,
            }
            for m in matches
        ],
    )


# -- clean-up list ----------------------------------------------------------------------------


async def candidate_pairs(context: RequestContext) -> list[DuplicatePair]:
    """Every suspected pair within the caller's read scope, ordered by (left, right) id."""
    rows = context.decisions.rows(Resource.CUSTOMER, Action.READ)
    if rows.is_never:
        return []
    left, right = CUSTOMERS.alias("l"), CUSTOMERS.alias("r")
    live = [
        rows.sql(_facts(left)),
        rows.sql(_facts(right)),
        left.c.archived_at.is_(None),
        right.c.archived_at.is_(None),
        left.c.id < right.c.id,
    ]
    pairs: dict[tuple[int, int], DuplicatePair] = {}
    selects = []
    for reason, (guard, _) in EXACT.items():
        readable = _readable(context, guard)
        if readable.is_never:
            continue
        column = {"creditCode": "credit_code", "phone": "phone_bidx", "email": "email_bidx",
                  "idNumber": "id_number_bidx"}[guard]  # fmt: skip
        lhs: ColumnElement[Any] = left.c[column]
        rhs: ColumnElement[Any] = right.c[column]
        selects.append(
            select(left.c.id, right.c.id, literal(reason.value)).where(
                *live,
                lhs.is_not(None),
                lhs == rhs,
                readable.sql(_facts(left)),
                readable.sql(_facts(right)),
            )
        )
    async with context.db.lock:
        session = context.db.session
        if selects:
            for a, b, reason in (await session.execute(union_all(*selects))).all():
                pair = pairs.setdefault((a, b), DuplicatePair(reasons=[], left_pk=a, right_pk=b))
                pair.reasons.append(DuplicateReason(reason))
        readable = _readable(context, "name")
        if not readable.is_never:
            companies = (
                await session.execute(
                    select(CUSTOMERS.c.id, CUSTOMERS.c.name, CUSTOMERS.c.region).where(
                        rows.sql(_facts()),
                        readable.sql(_facts()),
                        CUSTOMERS.c.archived_at.is_(None),
                        CUSTOMERS.c.kind == "COMPANY",
                        CUSTOMERS.c.region.is_not(None),
                    )
                )
            ).all()
            for a, b, score in _similar_names(companies):
                pair = pairs.setdefault((a, b), DuplicatePair(reasons=[], left_pk=a, right_pk=b))
                pair.reasons.append(DuplicateReason.NAME)
                pair.similarity = round(score / 100, 3)
    return [pairs[key] for key in sorted(pairs)]


def _similar_names(rows: Sequence[Any]) -> list[tuple[int, int, float]]:
    """(smaller id, larger id, score) of similar names within each region.

    Quadratic per region, but in rapidfuzz's C loop: about a second for a region of a few
    thousand companies; a clean-up list, not a hot path.
    """
    by_region: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for pk, name, region in rows:
        reduced = normalise_company_name(name or "")
        if reduced:
            by_region[region].append((pk, reduced))
    found = []
    for members in by_region.values():
        members.sort()
        for index, (pk, reduced) in enumerate(members[:-1]):
            later = {other: text for other, text in members[index + 1 :]}
            for _, score, other in process.extract(
                reduced, later, scorer=fuzz.ratio, score_cutoff=NAME_CUTOFF, limit=None
            ):
                found.append((pk, other, score))
    return found


async def duplicate_connection(
    context: RequestContext, first: int | None, after: str | None
) -> Connection[DuplicatePair]:
    limit = checked_first(first)
    pairs = await candidate_pairs(context)
    total = len(pairs)
    if after is not None:
        a, b = decode_cursor(after)
        pairs = [p for p in pairs if (p.left_pk, p.right_pk) > (a, b)]
    page = pairs[:limit]
    cursors = [encode_cursor(p.left_pk, p.right_pk) for p in page]
    return Connection(
        edges=[Edge(cursor=c, node=p) for c, p in zip(cursors, page, strict=True)],
        nodes=page,
        page_info=PageInfo(
            has_next_page=len(pairs) > limit, end_cursor=cursors[-1] if cursors else None
        ),
        total_count=total,
    )


@strawberry.type
class DuplicatesQuery:
    @strawberry.field(description="Suspected duplicate pairs among the customers you may read.")
    async def duplicate_candidates(
        self, info: strawberry.Info, first: int | None = 50, after: str | None = None
    ) -> Connection[DuplicatePair]:
        return await duplicate_connection(info.context, first, after)
