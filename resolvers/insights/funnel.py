"""`salesFunnel`: opportunities per stage now, and how they moved through the stage history.

Two statements: the current stage of each opportunity in scope (count, amount), then its stage
history (`opportunity_stage_changes`) for conversion rates and the time spent per stage.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, Table, case, func, literal, select, union_all

from db.models.opportunity import OpportunityStageChange
from policy.vocabulary import Resource
from resolvers.context import RequestContext
from resolvers.insights.rights import InsightScope, filter_clauses, report_partial, withhold
from resolvers.records import OPPORTUNITIES
from schema.enums import OpportunityStage
from schema.insights import FunnelStage, InsightFilter, SalesFunnel

CHANGES: Table = OpportunityStageChange.__table__  # type: ignore[assignment]  # a declarative table

# the funnel's order; LOST leaves it from any stage and converts to nothing
FUNNEL = ("LEAD", "QUALIFIED", "PROPOSAL", "NEGOTIATION", "WON")
STAGES = (*FUNNEL, "LOST")
BITS = {stage: 1 << position for position, stage in enumerate(STAGES)}
NEXT = dict(zip(FUNNEL, FUNNEL[1:], strict=False))
SECONDS_PER_DAY = 86_400


def _bit(stage: ColumnElement[str | None]) -> ColumnElement[int]:
    return case(BITS, value=stage, else_=0)


async def sales_funnel(context: RequestContext, filter: InsightFilter | None) -> SalesFunnel:
    computed_at = datetime.now(UTC)
    scope = InsightScope(context, Resource.OPPORTUNITY, OPPORTUNITIES)
    o = OPPORTUNITIES.c
    where = filter_clauses(
        scope,
        filter,
        owner=(scope, "owner", o.owner_id),
        created=(scope, "createdAt", o.created_at),
    )
    stage, amount = scope.dimension("stage"), scope.value("amount")
    withhold(context, stage, amount)
    counts: dict[str | None, tuple[int, Decimal | None]] = {}
    if not scope.is_empty:
        stage_column = stage.column(o.stage)
        statement = (
            select(func.count(), func.sum(amount.column(o.amount)))
            .select_from(scope.from_clause())
            .where(*scope.where(), *where)
        )
        if not stage.denied:  # a constant in GROUP BY is an error in PostgreSQL
            statement = statement.add_columns(stage_column).group_by(stage_column)
        for row in (await context.db.execute(statement)).all():
            counts[row[2] if not stage.denied else None] = (row[0], row[1])
        await report_partial(scope, where, [stage, amount])
    total = sum(n for n, _ in counts.values())
    total_amount = None
    if not amount.denied:
        total_amount = sum((a for _, a in counts.values() if a is not None), Decimal(0))
    scope.note_read("salesFunnel", [g.type_field.split(".")[1] for g in (stage, amount)
                                    if not g.denied])  # fmt: skip
    stages = None
    if not stage.denied:
        reached, advanced, medians = await _history(scope, where, stage.mask)
        stages = [
            FunnelStage(
                stage=OpportunityStage(name),
                count=counts.get(name, (0, None))[0],
                amount=None
                if amount.denied
                else counts.get(name, (0, Decimal(0)))[1] or Decimal(0),
                conversion_rate=(
                    advanced[name] / reached[name] if name in NEXT and reached[name] else None
                ),
                median_days_in_stage=medians.get(name),
            )
            for name in STAGES
        ]
    return SalesFunnel(
        stages=stages, total_count=total, total_amount=total_amount, computed_at=computed_at
    )


async def _history(
    scope: InsightScope, where: list[ColumnElement[bool]], mask: ColumnElement[bool] | None
) -> tuple[dict[str, int], dict[str, int], dict[str, float]]:
    """Per stage: opportunities that reached it, those that also reached the next, median stay.

    An opportunity reached a stage when it is there now or its history enters or leaves it. A
    stay runs from the previous move (or the opportunity's creation) to the move out of it.
    """
    reached = dict.fromkeys(STAGES, 0)
    advanced = dict.fromkeys(STAGES, 0)
    if scope.is_empty:
        return reached, advanced, {}
    o, h = OPPORTUNITIES.c, CHANGES.c
    visible = (
        select(o.id, o.stage, o.created_at)
        .select_from(scope.from_clause())
        .where(*scope.where(), *where, *([mask] if mask is not None else []))
        .cte("visible")
    )
    previous = func.lag(h.at).over(partition_by=h.opportunity_id, order_by=(h.at, h.id))
    moves = (
        select(
            h.opportunity_id,
            h.from_stage,
            h.to_stage,
            (h.at - func.coalesce(previous, visible.c.created_at)).label("stay"),
        )
        .select_from(CHANGES.join(visible, visible.c.id == h.opportunity_id))
        .cte("moves")
    )
    marks = union_all(
        select(visible.c.id.label("id"), _bit(visible.c.stage).label("bit")),
        select(
            moves.c.opportunity_id,
            _bit(moves.c.from_stage).op("|")(_bit(moves.c.to_stage)),
        ),
    ).subquery("marks")
    per_opportunity = (
        select(func.bit_or(marks.c.bit).label("mask")).group_by(marks.c.id).subquery("reach")
    )
    m = per_opportunity.c.mask
    columns = []
    for name, after in NEXT.items():
        both = BITS[name] | BITS[after]
        columns.append(func.count().filter(m.op("&")(BITS[name]) != 0).label(f"r_{name}"))
        columns.append(func.count().filter(m.op("&")(both) == both).label(f"a_{name}"))
    row = (await scope.context.db.execute(select(*columns))).one()._mapping
    for name in NEXT:
        reached[name], advanced[name] = row[f"r_{name}"], row[f"a_{name}"]
    days = func.extract("epoch", moves.c.stay) / literal(SECONDS_PER_DAY)
    median = func.percentile_cont(0.5).within_group(days)
    statement = (
        select(moves.c.from_stage, median)
        .where(moves.c.from_stage.is_not(None))
        .group_by(moves.c.from_stage)
    )
    medians = {
        stage: float(value)
        for stage, value in (await scope.context.db.execute(statement)).all()
        if value is not None
    }
    return reached, advanced, medians
