"""RFM scoring of a customer's won deals, as SQL: `Customer.segment` and the segments insight.

It lies below both its users, the record specs (`resolvers.records`, a field of Customer)
and the insights room (`insights.segments`), so it names the tables itself.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Table, case, func, select

from db.models import Customer, Opportunity, OpportunityStageChange
from schema.enums import RfmSegment

_CUSTOMERS: Table = Customer.__table__  # type: ignore[assignment]  # declarative tables are Tables
_OPPORTUNITIES: Table = Opportunity.__table__  # type: ignore[assignment]
_CHANGES: Table = OpportunityStageChange.__table__  # type: ignore[assignment]

SECONDS_PER_DAY = 86_400
# score 5 down to 2 at or below each bound; beyond the last (or never): 1
RECENCY_DAYS = (30, 90, 180, 365)
# score 2 up to 5 from each bound up; below the first: 1
FREQUENCY_WINS = (1, 2, 3, 5)
MONETARY_AMOUNTS = (10_000, 100_000, 500_000, 2_000_000)


def _rising(value: Any, bounds: tuple[int, ...]) -> ColumnElement[int]:
    """1 below the first bound, 2 … 5 from each bound up."""
    whens = [(value >= bound, score) for score, bound in reversed(list(enumerate(bounds, 2)))]
    return case(*whens, else_=1)


def _segment(r: Any, f: Any, m: Any) -> ColumnElement[str]:
    """First rule that holds, best segment first."""
    return case(
        (f == 1, RfmSegment.NO_PURCHASE.value),
        ((r >= 4) & (f >= 3) & (m >= 4), RfmSegment.CHAMPIONS.value),
        ((r >= 3) & (f >= 3), RfmSegment.LOYAL.value),
        (r >= 4, RfmSegment.PROMISING.value),
        (r == 3, RfmSegment.NEEDS_ATTENTION.value),
        ((f >= 3) | (m >= 4), RfmSegment.AT_RISK.value),
        else_=RfmSegment.HIBERNATING.value,
    )


def customer_segment() -> ColumnElement[str]:
    """`Customer.segment`: the RFM segment of the row's customer, by the thresholds above, from
    all its won deals (a correlated scalar subquery on `customers`).

    Who may read it is policy (`policy.vocabulary.DERIVED`): only where the caller may read
    the customer's opportunities, their stage and their amounts, so the segment never tells
    what the deals would not.
    """
    o, h = _OPPORTUNITIES.c, _CHANGES.c
    won_at = (
        select(func.max(h.at))
        .where(h.opportunity_id == o.id, h.to_stage == "WON")
        .scalar_subquery()
    )
    last_won = func.max(func.coalesce(won_at, o.updated_at))
    days = func.extract("epoch", func.now() - last_won) / SECONDS_PER_DAY
    r = case(
        (last_won.is_(None), 1),
        *[(days <= bound, score) for score, bound in zip((5, 4, 3, 2), RECENCY_DAYS, strict=True)],
        else_=1,
    )
    f = _rising(func.count(), FREQUENCY_WINS)
    m = _rising(func.coalesce(func.sum(o.amount), 0), MONETARY_AMOUNTS)
    # an aggregate without GROUP BY gives one row even for no deals: NO_PURCHASE
    return (
        select(_segment(r, f, m))
        .where(o.customer_id == _CUSTOMERS.c.id, o.stage == "WON", o.archived_at.is_(None))
        .scalar_subquery()
    )
