"""`customerSegments`: RFM segments, and the customers by level, region and industry.

RFM here reads the won opportunities the caller may see: recency is the days since the last move
to WON, frequency the number of won deals, monetary their amounts. `totalSpend` is not used: it is
a finance-only field with no time axis, so segments would mean different things to different
callers. Scores use fixed thresholds rather than quintiles of the caller's own customers, so a
customer's segment does not change with who asks. Live, one statement: the scores per customer,
then `GROUPING SETS` over segment, level, region and industry. From the snapshot
(`insight_customer_facets`, migration 0005), each customer's segment (also as it reads with
amounts hidden) and dimensions were counted per department × customer owner at the refresh, so
a caller's scope and masks apply to those groups; exact, with recency counted to the refresh.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, FromClause, and_, case, func, literal, literal_column, select

from insights import snapshots
from insights.funnel import CHANGES
from insights.rights import (
    Gate,
    InsightScope,
    filter_clauses,
    on_facts,
    report_partial,
    report_partial_on,
    rows_of,
    snapshot_filter,
    withhold,
)
from policy.predicates import ScopeColumns
from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.records import CUSTOMERS, OPPORTUNITIES
from resolvers.rfm import (
    FREQUENCY_WINS,
    MONETARY_AMOUNTS,
    RECENCY_DAYS,
    SECONDS_PER_DAY,
    _rising,
    _segment,
)
from schema.enums import CustomerLevel
from schema.insights import (
    CustomerSegments,
    InsightFilter,
    LevelCount,
    NamedCount,
    RfmSegment,
    SegmentCount,
)


async def customer_segments(
    context: RequestContext, filter: InsightFilter | None
) -> CustomerSegments:
    computed_at = datetime.now(UTC)
    customers = InsightScope(context, Resource.CUSTOMER, CUSTOMERS)
    deals = InsightScope(context, Resource.OPPORTUNITY, OPPORTUNITIES)
    c, o, h = CUSTOMERS.c, OPPORTUNITIES.c, CHANGES.c
    where = filter_clauses(
        customers,
        filter,
        owner=(customers, "owner", c.owner_id),
        created=(customers, "createdAt", c.created_at),
    )
    level, region, industry = (customers.dimension(f) for f in ("level", "region", "industry"))
    stage, amount = deals.dimension("stage"), deals.value("amount")
    withhold(context, level, region, industry, stage, amount)
    rfm_hidden = stage.denied or amount.denied

    dimensions: list[tuple[str, Any]] = []
    totals: dict[str, dict[str | None, int]] = {}
    total = 0
    is_snapshot = False
    snapshot_at = None
    if not customers.is_empty and (filter is None or (filter.from_ is None and filter.to is None)):
        predicates = [context.decisions.rows(Resource.CUSTOMER, Action.READ)] + [
            context.decisions.rows(Resource.OPPORTUNITY, Action.READ)
        ]
        for scope, names in ((customers, ("level", "region", "industry")),
                             (deals, ("stage", "amount"))):  # fmt: skip
            predicates += [context.decisions.field(scope.resource, n, Action.READ) for n in names]
        snapshot_at = await snapshots.serving_at(context, snapshots.SEGMENTS, predicates)
    if snapshot_at is not None:
        gates = {"level": level, "region": region, "industry": industry}
        total, totals = await _from_snapshot(
            customers, deals, filter, gates, None if rfm_hidden else (stage, amount)
        )
        computed_at, is_snapshot = snapshot_at, True
    elif not customers.is_empty:
        columns: dict[str, Any] = {}
        source: Any = CUSTOMERS
        if not rfm_hidden:
            won_at = (
                select(h.opportunity_id, func.max(h.at).label("won_at"))
                .where(h.to_stage == "WON")
                .group_by(h.opportunity_id)
                .subquery("won_at")
            )
            wins = (
                select(
                    o.customer_id,
                    func.max(func.coalesce(won_at.c.won_at, o.updated_at)).label("last_won"),
                    func.count().label("deals"),
                    func.coalesce(func.sum(amount.column(o.amount)), 0).label("value"),
                )
                .select_from(deals.from_clause().outerjoin(won_at, won_at.c.opportunity_id == o.id))
                .where(*deals.where(), o.stage == "WON", *_masks(stage))
                .group_by(o.customer_id)
                .subquery("wins")
            )
            source = CUSTOMERS.outerjoin(wins, wins.c.customer_id == c.id)
            days = func.extract("epoch", literal(computed_at) - wins.c.last_won) / SECONDS_PER_DAY
            r = case(
                (wins.c.last_won.is_(None), 1),
                *[(days <= bound, score) for score, bound in zip((5, 4, 3, 2), RECENCY_DAYS,
                                                                 strict=True)],
                else_=1,
            )  # fmt: skip
            columns.update(
                r=r,
                f=_rising(func.coalesce(wins.c.deals, 0), FREQUENCY_WINS),
                m=_rising(func.coalesce(wins.c.value, 0), MONETARY_AMOUNTS),
            )
        for name, gate, column in (
            ("level", level, c.level), ("region", region, c.region),
            ("industry", industry, c.industry),
        ):  # fmt: skip
            if not gate.denied:
                columns[name] = gate.column(column)
        scored = (
            select(*(value.label(name) for name, value in columns.items()))
            .select_from(source)
            .where(*customers.where(), *where)
            .subquery("scored")
        )
        if not rfm_hidden:
            dimensions.append(("segment", _segment(scored.c.r, scored.c.f, scored.c.m)))
        dimensions += [(n, scored.c[n]) for n in ("level", "region", "industry") if n in columns]
        expressions = [e for _, e in dimensions]
        statement = select(
            *expressions,
            func.count(),
            func.grouping(*expressions) if expressions else literal(0),
        ).select_from(scored)
        if expressions:
            # the empty set `()` adds the grand total row
            statement = statement.group_by(func.grouping_sets(*expressions, literal_column("()")))
        totals = {name: {} for name, _ in dimensions}
        full = (1 << len(expressions)) - 1
        for row in await rows_of(context, statement):
            count, grouping = row[-2], row[-1]
            if grouping == full:
                total = count
                continue
            for position, (name, _) in enumerate(dimensions):
                if grouping == full ^ (1 << (len(expressions) - 1 - position)):
                    totals[name][row[position]] = count
        await report_partial(customers, where, [level, region, industry])
        await report_partial(deals, [], [stage, amount])
    customers.note_read(
        "customerSegments",
        [g.type_field.split(".")[1] for g in (level, region, industry) if not g.denied],
    )
    if not rfm_hidden:
        deals.note_read("customerSegments", ["stage", "amount"])
    return CustomerSegments(
        total_count=total,
        segments=None
        if rfm_hidden
        else [SegmentCount(segment=s, count=totals.get("segment", {}).get(s.value, 0))
              for s in RfmSegment],
        levels=None
        if level.denied
        else [LevelCount(level=v, count=totals.get("level", {}).get(v.value, 0))
              for v in CustomerLevel],
        regions=_named(totals.get("region", {}), region),
        industries=_named(totals.get("industry", {}), industry),
        computed_at=computed_at,
        is_snapshot=is_snapshot,
    )  # fmt: skip


async def _from_snapshot(
    customers: InsightScope,
    deals: InsightScope,
    filter: InsightFilter | None,
    dimension_gates: dict[str, Gate],
    rfm_gates: tuple[Gate, Gate] | None,
) -> tuple[int, dict[str, dict[str | None, int]]]:
    """Counts per facet from the pre-aggregated view. A customer's won deals count when the
    caller may read its opportunities and their stage, its amounts when amounts are readable:
    both hold alike for every customer of a group (same department and owner)."""
    context, v = customers.context, snapshots.CUSTOMER_FACETS.c
    facts = ScopeColumns(v.owner_id, v.department_id, None)
    where = [customers.rows.sql(facts), *snapshot_filter(context, filter, facts)]
    values: list[tuple[Any, Any]] = []
    gates = {name: on_facts(customers, gate, facts) for name, gate in dimension_gates.items()}
    for name, gate in gates.items():
        if not gate.denied:
            values.append((v.facet == name, gate.column(v.value)))
    if rfm_gates is not None:
        stage, amount = (on_facts(deals, gate, facts) for gate in rfm_gates)
        wins_readable = and_(deals.rows.sql(facts), *_masks(stage))
        priced = v.value if amount.mask is None else case((amount.mask, v.value), else_=v.unpriced)
        segment = case((wins_readable, priced), else_=RfmSegment.NO_PURCHASE.value)
        values.append((v.facet == "segment", segment))
        await report_partial_on(
            context, snapshots.CUSTOMER_FACETS, [deals.rows.sql(facts)], [stage, amount]
        )
    value = case(*values) if values else literal(None)
    statement = select(v.facet, value, func.sum(v.customers)).where(*where).group_by(v.facet, value)
    totals: dict[str, dict[str | None, int]] = {}
    total = 0
    for facet, name, count in await rows_of(context, statement):
        if facet == "level":
            total += int(count)
        if facet == "segment" and rfm_gates is None:
            continue
        if facet != "segment" and gates[facet].denied:
            continue
        totals.setdefault(facet, {})[name] = int(count)
    await report_partial_on(context, snapshots.CUSTOMER_FACETS, where, list(gates.values()))
    return total, totals


def _masks(*gates: Gate) -> list[ColumnElement[bool]]:
    return [g.mask for g in gates if g.mask is not None]


def _named(counts: dict[str | None, int], gate: Gate) -> list[NamedCount] | None:
    if gate.denied:
        return None
    entries = [NamedCount(name=name, count=count) for name, count in counts.items()]
    entries.sort(key=lambda e: (-e.count, e.name is None, e.name or ""))
    return entries


def customer_segment_joined() -> tuple[FromClause, ColumnElement[str]]:
    """`customer_segment` for a statement over many customers: the won deals grouped once
    (to be LEFT JOINed on `customer_id`) and the segment computed from that row, instead of
    two correlated subqueries per customer. The same rule on the same rows: no won deal is
    NO_PURCHASE, as an aggregate without GROUP BY gives it. An export of 100 000 customers
    spent 4 of its 5 database seconds in the correlated form."""
    o, h = OPPORTUNITIES.c, CHANGES.c
    won_at = (
        select(h.opportunity_id, func.max(h.at).label("won_at"))
        .where(h.to_stage == "WON")
        .group_by(h.opportunity_id)
        .subquery("segment_won_at")
    )
    wins = (
        select(
            o.customer_id,
            func.max(func.coalesce(won_at.c.won_at, o.updated_at)).label("last_won"),
            func.count().label("deals"),
            func.coalesce(func.sum(o.amount), 0).label("value"),
        )
        .select_from(OPPORTUNITIES.outerjoin(won_at, won_at.c.opportunity_id == o.id))
        .where(o.stage == "WON", o.archived_at.is_(None))
        .group_by(o.customer_id)
        .subquery("segment_wins")
    )
    days = func.extract("epoch", func.now() - wins.c.last_won) / SECONDS_PER_DAY
    r = case(
        (wins.c.last_won.is_(None), 1),
        *[(days <= bound, score) for score, bound in zip((5, 4, 3, 2), RECENCY_DAYS, strict=True)],
        else_=1,
    )
    f = _rising(func.coalesce(wins.c.deals, 0), FREQUENCY_WINS)
    m = _rising(func.coalesce(wins.c.value, 0), MONETARY_AMOUNTS)
    return wins, _segment(r, f, m)
