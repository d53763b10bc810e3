"""`salesFunnel`: opportunities per stage now, and how they moved through the stage history.

Live: two statements, the current stage of each opportunity in scope (count, amount), then its
stage history (`opportunity_stage_changes`) for conversion rates and time per stage. From a
snapshot (`insights.snapshots`), the same figures come from two small pre-aggregated
views; medians are then read from 5 %-wide buckets of days, so they are within 2.5 %.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, Table, case, func, literal, null, select, union_all

from db.models.opportunity import OpportunityStageChange
from insights import snapshots
from insights.rights import (
    Gate,
    InsightScope,
    filter_clauses,
    report_partial,
    row_of,
    rows_of,
    withhold,
)
from policy.predicates import ScopeColumns
from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.filters import pk_of
from resolvers.records import OPPORTUNITIES
from schema.enums import OpportunityStage
from schema.insights import FunnelStage, InsightFilter, SalesFunnel

CHANGES: Table = OpportunityStageChange.__table__  # type: ignore[assignment]  # a declarative table

# the funnel's order; LOST leaves it from any stage and converts to nothing
FUNNEL = ("LEAD", "QUALIFIED", "PROPOSAL", "NEGOTIATION", "WON")
STAGES = (*FUNNEL, "LOST")
BITS = {stage: 1 << position for position, stage in enumerate(STAGES)}  # as in migration 0004
NEXT = dict(zip(FUNNEL, FUNNEL[1:], strict=False))
SECONDS_PER_DAY = 86_400


def _bit(stage: ColumnElement[str | None]) -> ColumnElement[int]:
    return case(BITS, value=stage, else_=0)


@dataclass
class Figures:
    """What either path computes; `sales_funnel` turns it into the response."""

    counts: dict[str, tuple[int, Decimal | None]] = field(default_factory=dict)
    reached: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STAGES, 0))
    advanced: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STAGES, 0))
    medians: dict[str, float] = field(default_factory=dict)


async def sales_funnel(context: RequestContext, filter: InsightFilter | None) -> SalesFunnel:
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
    figures = Figures()
    computed_at = datetime.now(UTC)
    is_snapshot = False
    if not scope.is_empty:
        snapshot_at = None
        if _snapshot_may_serve(context, filter):
            snapshot_at = await snapshots.refreshed_at(context, snapshots.FUNNEL)
        if snapshot_at is not None:
            figures = await _from_snapshot(context, scope, filter, stage, amount)
            computed_at, is_snapshot = snapshot_at, True
        else:
            figures = await _live(scope, where, stage, amount)
    scope.note_read(
        "salesFunnel", [g.type_field.split(".")[1] for g in (stage, amount) if not g.denied]
    )
    counts = figures.counts
    stages = None
    if not stage.denied:
        stages = [
            FunnelStage(
                stage=OpportunityStage(name),
                count=counts.get(name, (0, None))[0],
                amount=None if amount.denied else counts.get(name, (0, None))[1] or Decimal(0),
                conversion_rate=(
                    figures.advanced[name] / figures.reached[name]
                    if name in NEXT and figures.reached[name]
                    else None
                ),
                median_days_in_stage=figures.medians.get(name),
            )
            for name in STAGES
        ]
    total_amount = None
    if not amount.denied:
        total_amount = sum((a for _, a in counts.values() if a is not None), Decimal(0))
    return SalesFunnel(
        stages=stages,
        total_count=sum(n for n, _ in counts.values()),
        total_amount=total_amount,
        computed_at=computed_at,
        is_snapshot=is_snapshot,
    )


def _snapshot_may_serve(context: RequestContext, filter: InsightFilter | None) -> bool:
    if filter is not None and (filter.from_ is not None or filter.to is not None):
        return False  # the snapshot has no time axis
    decisions = context.decisions
    predicates = [decisions.rows(Resource.OPPORTUNITY, Action.READ)] + [
        decisions.field(Resource.OPPORTUNITY, name, Action.READ) for name in ("stage", "amount")
    ]
    return not any(snapshots.names_customers(p) for p in predicates)


# -- live -----------------------------------------------------------------------------------------


async def _live(
    scope: InsightScope, where: list[ColumnElement[bool]], stage: Gate, amount: Gate
) -> Figures:
    o = OPPORTUNITIES.c
    figures = Figures()
    stage_column = stage.column(o.stage)
    statement = (
        select(stage_column, func.count(), func.sum(amount.column(o.amount)))
        .select_from(scope.from_clause())
        .where(*scope.where(), *where)
        .group_by(stage_column)
    )
    for name, count, total in await rows_of(scope.context, statement):
        figures.counts[name] = (count, total)
    await report_partial(scope, where, [stage, amount])
    if not stage.denied:
        await _live_history(scope, where, stage.mask, figures)
    return figures


async def _live_history(
    scope: InsightScope,
    where: list[ColumnElement[bool]],
    mask: ColumnElement[bool] | None,
    figures: Figures,
) -> None:
    """Per stage: opportunities that reached it, those that also reached the next, median stay.

    An opportunity reached a stage when it is there now or its history enters or leaves it. A
    stay runs from the previous move (or the opportunity's creation) to the move out of it.
    """
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
        select(moves.c.opportunity_id, _bit(moves.c.from_stage).op("|")(_bit(moves.c.to_stage))),
    ).subquery("marks")
    reach = select(func.bit_or(marks.c.bit).label("mask")).group_by(marks.c.id).subquery("reach")
    ones = literal(1)
    await _reach_counts(scope.context, reach.c.mask, ones, reach, figures)
    days = func.extract("epoch", moves.c.stay) / literal(SECONDS_PER_DAY)
    statement = (
        select(moves.c.from_stage, func.percentile_cont(0.5).within_group(days))
        .where(moves.c.from_stage.is_not(None))
        .group_by(moves.c.from_stage)
    )
    for name, value in await rows_of(scope.context, statement):
        if value is not None:
            figures.medians[name] = float(value)


async def _reach_counts(
    context: RequestContext,
    mask: ColumnElement[int],
    weight: ColumnElement[int],
    source: object,
    figures: Figures,
    where: list[ColumnElement[bool]] | None = None,
) -> None:
    columns = []
    for name, after in NEXT.items():
        both = BITS[name] | BITS[after]
        columns.append(func.sum(case((mask.op("&")(BITS[name]) != 0, weight), else_=0)))
        columns.append(func.sum(case((mask.op("&")(both) == both, weight), else_=0)))
    statement = select(*columns).select_from(source).where(*(where or []))  # type: ignore[arg-type]  # a FROM clause
    row = await row_of(context, statement)
    for position, name in enumerate(NEXT):
        figures.reached[name] = int(row[2 * position] or 0)
        figures.advanced[name] = int(row[2 * position + 1] or 0)


# -- snapshot -------------------------------------------------------------------------------------


async def _from_snapshot(
    context: RequestContext,
    live_scope: InsightScope,
    filter: InsightFilter | None,
    stage: Gate,
    amount: Gate,
) -> Figures:
    """The same figures from the pre-aggregated views, the caller's predicates applied to the
    scope facts each aggregated row keeps (department, customer owner)."""
    s, t = snapshots.FUNNEL_STAGES.c, snapshots.FUNNEL_STAYS.c
    figures = Figures()
    decisions = context.decisions

    def scoped(table: Table) -> tuple[list[ColumnElement[bool]], Gate, Gate]:
        c = table.c
        facts = ScopeColumns(c.owner_id, c.department_id, null())
        clauses = [live_scope.rows.sql(facts)]
        if filter is not None and filter.department_id is not None:
            department = pk_of(filter.department_id, "Department", "filter.departmentId")
            tree = context.policy_store.current().departments.subtree(department)
            clauses.append(c.department_id.in_(sorted(tree)))
        if filter is not None and filter.owner_id is not None:
            clauses.append(c.deal_owner_id == pk_of(filter.owner_id, "User", "filter.ownerId"))
        gates = []
        for gate, name in ((stage, "stage"), (amount, "amount")):
            decision = decisions.field(Resource.OPPORTUNITY, name, Action.READ)
            if gate.is_partial:
                gate = Gate(gate.type_field, mask=decision.sql(facts))
            gates.append(gate)
        return clauses, gates[0], gates[1]

    where, stage_gate, amount_gate = scoped(snapshots.FUNNEL_STAGES)
    stage_column = stage_gate.column(s.stage)
    statement = (
        select(stage_column, func.sum(s.opportunities), func.sum(amount_gate.column(s.amount)))
        .where(*where)
        .group_by(stage_column)
    )
    for name, count, total in await rows_of(context, statement):
        figures.counts[name] = (int(count), total)
    partial = [g for g in (stage_gate, amount_gate) if g.is_partial]
    if partial:
        probe = select(*(func.bool_or(~g.mask) for g in partial)).where(*where)  # type: ignore[operator]  # mask is set
        row = await row_of(context, probe)
        for gate, left_out in zip(partial, row, strict=True):
            if left_out:
                context.deny(gate.type_field)
    if stage.denied:
        return figures
    masks = [stage_gate.mask] if stage_gate.mask is not None else []
    await _reach_counts(
        context, s.mask, s.opportunities, snapshots.FUNNEL_STAGES, figures, [*where, *masks]
    )
    stay_where, stay_stage, _ = scoped(snapshots.FUNNEL_STAYS)
    stay_masks = [stay_stage.mask] if stay_stage.mask is not None else []
    statement = (
        select(t.stage, t.bucket, func.sum(t.moves))
        .where(*stay_where, *stay_masks)
        .group_by(t.stage, t.bucket)
        .order_by(t.stage, t.bucket)
    )
    histogram: dict[str, list[tuple[int, int]]] = {}
    for name, bucket, moves in await rows_of(context, statement):
        histogram.setdefault(name, []).append((bucket, int(moves)))
    for name, buckets in histogram.items():
        figures.medians[name] = snapshots.percentile(buckets, 0.5)
    return figures
