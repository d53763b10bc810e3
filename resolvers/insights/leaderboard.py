"""`leaderboard`: per owner, over the caller's rows, in the last N days.

New customers count by the customer's owner, won deals by the opportunity's owner (the move to
WON falls in the period), interactions by their author. One statement: the three groupings as a
`UNION ALL`, merged per person here.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, literal, select, union_all

from policy.vocabulary import Resource
from resolvers.context import RequestContext
from resolvers.insights.attention import INTERACTIONS
from resolvers.insights.funnel import CHANGES
from resolvers.insights.rights import Gate, InsightScope, report_partial, rows_of, withhold
from resolvers.records import CUSTOMERS, OPPORTUNITIES
from schema.insights import InsightPeriod, Leaderboard, LeaderboardEntry


def _masks(*gates: Gate) -> list[Any]:
    return [g.mask for g in gates if g.mask is not None]


async def leaderboard(context: RequestContext, period: InsightPeriod) -> Leaderboard:
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

    c, o, h, i = CUSTOMERS.c, OPPORTUNITIES.c, CHANGES.c, INTERACTIONS.c
    parts = []
    if not new_hidden and not customers.is_empty:
        parts.append(
            select(literal("new").label("kind"), c.owner_id.label("who"), func.count(),
                   literal(None).label("amount"))
            .where(*customers.where(), c.created_at >= start, c.created_at < end,
                   *_masks(*new_gates))
            .group_by(c.owner_id)
        )  # fmt: skip
    if not won_hidden and not deals.is_empty:
        parts.append(
            select(literal("won"), o.owner_id, func.count(), func.sum(amount.column(o.amount)))
            .select_from(deals.from_clause().join(CHANGES, h.opportunity_id == o.id))
            .where(*deals.where(), h.to_stage == "WON", h.at >= start, h.at < end,
                   o.stage == "WON", *_masks(*won_gates))
            .group_by(o.owner_id)
        )  # fmt: skip
    if not notes_hidden and not notes.is_empty:
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
        for kind, who, count, value in await rows_of(context, statement):
            if who is None:
                continue  # no owner or author recorded: nobody to rank
            figures[who][kind] = count
            if kind == "won":
                figures[who]["amount"] = value
    await report_partial(customers, [], list(new_gates))
    await report_partial(deals, [], [*won_gates, amount])
    await report_partial(notes, [], list(note_gates))
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
    return Leaderboard(entries=entries, from_=start, to=end)
