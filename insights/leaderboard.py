"""`leaderboard`: per owner, over the caller's rows, in the last N days.

New customers count by the customer's owner, won deals by the opportunity's owner (the move to
WON falls in the period), interactions by their author. Live, one statement: the three groupings
as a `UNION ALL`, merged per person here. From the snapshot (`insight_leaderboard`, migration
0005), the same figures were counted per department × customer owner for each `InsightPeriod`
ending at the refresh, so the period reported is the one ending at the snapshot's time; exact.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, literal, or_, select, union_all

from insights import snapshots
from insights.attention import INTERACTIONS
from insights.funnel import CHANGES
from insights.rights import (
    Gate,
    InsightScope,
    on_facts,
    report_partial,
    report_partial_on,
    rows_of,
    withhold,
)
from policy.predicates import ScopeColumns
from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.records import CONTRACTS, CUSTOMERS, OPPORTUNITIES, PAYMENTS
from schema.insights import InsightPeriod, Leaderboard, LeaderboardEntry


def _masks(*gates: Gate) -> list[Any]:
    return [g.mask for g in gates if g.mask is not None]


async def leaderboard(
    context: RequestContext, period: InsightPeriod, *, money: bool = False
) -> Leaderboard:
    """`money`: also contract value signed and amount collected (when the query asks)."""
    end = datetime.now(UTC)
    start = end - timedelta(days=period.value)
    customers = InsightScope(context, Resource.CUSTOMER, CUSTOMERS)
    deals = InsightScope(context, Resource.OPPORTUNITY, OPPORTUNITIES)
    notes = InsightScope(context, Resource.INTERACTION, INTERACTIONS)  # type: ignore[arg-type]  # a declarative table
    new_gates = (customers.dimension("owner"), customers.dimension("createdAt"))
    won_gates = (deals.dimension("owner"), deals.dimension("stage"))
    amount = deals.value("amount")
    note_gates = (notes.dimension("author"), notes.dimension("occurredAt"))
    new_hidden = withhold(context, *new_gates)
    won_hidden = withhold(context, *won_gates)
    amount_hidden = withhold(context, amount) or won_hidden
    notes_hidden = withhold(context, *note_gates)

    hidden = {"new": new_hidden, "won": won_hidden, "notes": notes_hidden}
    kinds = {
        "new": (customers, new_gates),
        "won": (deals, (*won_gates, amount)),
        "notes": (notes, note_gates),
    }
    predicates = [
        predicate
        for scope, gates in kinds.values()
        for predicate in (
            context.decisions.rows(scope.resource, Action.READ),
            *(
                context.decisions.field(scope.resource, g.type_field.split(".")[1], Action.READ)
                for g in gates
            ),
        )
    ]
    snapshot_at = await snapshots.serving_at(context, snapshots.LEADERBOARD, predicates)
    is_snapshot = snapshot_at is not None
    if snapshot_at is not None:
        end = snapshot_at
        start = end - timedelta(days=period.value)
        figures = await _from_snapshot(context, period, kinds, hidden, amount)
    else:
        figures = await _live(context, start, end, kinds, hidden, amount)
    money_hidden = {"signed": True, "collected": True}
    if money:
        sums, money_hidden = await _money(context, start, end)
        for who, found in sums.items():
            figures.setdefault(who, {}).update(found)
    if not new_hidden:
        customers.note_read("leaderboard", ["owner", "createdAt"])
    if not won_hidden:
        deals.note_read("leaderboard", ["owner", "stage", *([] if amount_hidden else ["amount"])])
    if not notes_hidden:
        notes.note_read("leaderboard", ["author", "occurredAt"])
    entries = [
        LeaderboardEntry(
            new_customers=None if new_hidden else found.get("new", 0),
            won_count=None if won_hidden else found.get("won", 0),
            won_amount=None if amount_hidden else found.get("amount") or Decimal(0),
            interactions_logged=None if notes_hidden else found.get("notes", 0),
            contract_value_signed=None
            if money_hidden["signed"]
            else found.get("signed") or Decimal(0),
            amount_collected=None
            if money_hidden["collected"]
            else found.get("collected") or Decimal(0),
            owner_pk=who,
        )
        for who, found in figures.items()
    ]
    entries.sort(
        key=lambda e: (
            -(e.won_amount or 0),
            -(e.won_count or 0),
            -(e.new_customers or 0),
            -(e.interactions_logged or 0),
            e.owner_pk,
        )
    )
    return Leaderboard(
        entries=entries,
        from_=start,
        to=end,
        computed_at=end if is_snapshot else datetime.now(UTC),
        is_snapshot=is_snapshot,
    )


Kinds = dict[str, tuple[InsightScope, tuple[Gate, ...]]]


async def _money(
    context: RequestContext, start: datetime, end: datetime
) -> tuple[dict[int, dict[str, Any]], dict[str, bool]]:
    """Contract value signed (contracts starting in the period) and amount collected
    (payments paid in it) per contract owner: live, one statement, in each one's own scope;
    the sums are of finance fields, null to a caller who may not read them."""
    contracts = InsightScope(context, Resource.CONTRACT, CONTRACTS)
    payments = InsightScope(context, Resource.PAYMENT, PAYMENTS)
    signed_gates = (contracts.dimension("owner"), contracts.dimension("startsOn"))
    signed_amount = contracts.value("amount")
    paid_gates = (payments.dimension("paidOn"),)
    paid_amount = payments.value("amount")
    hidden = {
        "signed": withhold(context, *signed_gates) | withhold(context, signed_amount),
        "collected": withhold(context, *paid_gates) | withhold(context, paid_amount),
    }
    k, p = CONTRACTS.c, PAYMENTS.c
    first_day, last_day = start.date(), end.date()
    parts = []
    if not hidden["signed"] and not contracts.is_empty:
        parts.append(
            select(literal("signed").label("kind"), k.owner_id.label("who"),
                   func.sum(signed_amount.column(k.amount)).label("value"))
            .select_from(contracts.from_clause())
            .where(*contracts.where(), k.starts_on >= first_day, k.starts_on <= last_day,
                   *_masks(*signed_gates))
            .group_by(k.owner_id)
        )  # fmt: skip
    if not hidden["collected"] and not payments.is_empty:
        parts.append(
            select(literal("collected"), k.owner_id, func.sum(paid_amount.column(p.amount)))
            .select_from(payments.from_clause().join(CONTRACTS, k.id == p.contract_id))
            .where(*payments.where(), p.paid_on >= first_day, p.paid_on <= last_day,
                   *_masks(*paid_gates))
            .group_by(k.owner_id)
        )  # fmt: skip
    figures: dict[int, dict[str, Any]] = defaultdict(dict)
    if parts:
        statement = parts[0] if len(parts) == 1 else union_all(*parts)
        for kind, who, value in await rows_of(context, statement):
            if who is not None:
                figures[who][kind] = value
    if not hidden["signed"]:
        contracts.note_read("leaderboard", ["owner", "startsOn", "amount"])
    if not hidden["collected"]:
        payments.note_read("leaderboard", ["paidOn", "amount"])
    return figures, hidden


async def _live(
    context: RequestContext,
    start: datetime,
    end: datetime,
    kinds: Kinds,
    hidden: dict[str, bool],
    amount: Gate,
) -> dict[int, dict[str, Any]]:
    (customers, new_gates), (deals, won_gates), (notes, note_gates) = kinds.values()
    won_gates = won_gates[:2]
    c, o, h, i = CUSTOMERS.c, OPPORTUNITIES.c, CHANGES.c, INTERACTIONS.c
    parts = []
    if not hidden["new"] and not customers.is_empty:
        parts.append(
            select(literal("new").label("kind"), c.owner_id.label("who"), func.count(),
                   literal(None).label("amount"))
            .where(*customers.where(), c.created_at >= start, c.created_at < end,
                   *_masks(*new_gates))
            .group_by(c.owner_id)
        )  # fmt: skip
    if not hidden["won"] and not deals.is_empty:
        parts.append(
            select(literal("won"), o.owner_id, func.count(), func.sum(amount.column(o.amount)))
            .select_from(deals.from_clause().join(CHANGES, h.opportunity_id == o.id))
            .where(*deals.where(), h.to_stage == "WON", h.at >= start, h.at < end,
                   o.stage == "WON", *_masks(*won_gates))
            .group_by(o.owner_id)
        )  # fmt: skip
    if not hidden["notes"] and not notes.is_empty:
        parts.append(
            select(literal("notes"), i.author_id, func.count(), literal(None))
            .select_from(notes.from_clause())
            .where(*notes.where(), i.occurred_at >= start, i.occurred_at < end,
                   *_masks(*note_gates))
            .group_by(i.author_id)
        )  # fmt: skip
    figures: dict[int, dict[str, Any]] = defaultdict(dict)
    if parts:
        statement = parts[0] if len(parts) == 1 else union_all(*parts)
        _fold(figures, await rows_of(context, statement))
    await report_partial(customers, [], list(new_gates))
    await report_partial(deals, [], [*won_gates, amount])
    await report_partial(notes, [], list(note_gates))
    return figures


async def _from_snapshot(
    context: RequestContext,
    period: InsightPeriod,
    kinds: Kinds,
    hidden: dict[str, bool],
    amount: Gate,
) -> dict[int, dict[str, Any]]:
    """The three kinds from the pre-counted view: each kind's rows under its own row scope and
    masks, compiled onto the department and customer owner every counted row keeps."""
    v = snapshots.LEADERBOARD_FIGURES.c
    facts = ScopeColumns(v.owner_id, v.department_id, None)
    amount_gate = on_facts(kinds["won"][0], amount, facts)
    figures: dict[int, dict[str, Any]] = defaultdict(dict)
    picks: list[ColumnElement[bool]] = []
    for kind, (scope, gates) in kinds.items():
        if hidden[kind] or scope.is_empty:
            continue
        gates = tuple(on_facts(scope, gate, facts) for gate in gates)
        counted = gates[:2]  # the won kind's third gate is the amount, summed not counted
        rows = [v.kind == kind, v.days == period.value, scope.rows.sql(facts)]
        picks.append(and_(*rows, *_masks(*counted)))
        await report_partial_on(context, snapshots.LEADERBOARD_FIGURES, rows, gates)
    if picks:
        statement = (
            select(v.kind, v.who, func.sum(v.count), func.sum(amount_gate.column(v.amount)))
            .where(or_(false(), *picks))
            .group_by(v.kind, v.who)
        )
        _fold(figures, await rows_of(context, statement))
    return figures


def _fold(figures: dict[int, dict[str, Any]], rows: list[Any]) -> None:
    for kind, who, count, value in rows:
        if who is None:
            continue  # no owner or author recorded: nobody to rank
        figures[who][kind] = int(count)
        if kind == "won":
            figures[who]["amount"] = value
