"""`serviceBoard`: ticket counts, resolution times, satisfaction, backlog and SLA breaches.

Live: two statements over the tickets in scope: one row of distributions (percentiles need the
rows themselves), and counts grouped by status, priority and assignee, which Python folds into the
per-status, per-priority and per-assignee figures. From a snapshot (`insight_ticket_groups` and
`insight_ticket_resolutions`, migration 0005), the same two statements run over a few thousand
rows pre-aggregated per department and customer owner: counts, satisfaction and SLA breaches are
exact as of the refresh (unresolved tickets keep their age in whole hours), percentiles are read
from 5 %-wide buckets of hours and are within 2.5 %. A time window, a predicate naming customers
or an SLA above `snapshots.AGE_CAP_HOURS` is answered live.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_, case, func, literal, select, true

from insights import snapshots
from insights.rights import (
    Gate,
    InsightScope,
    filter_clauses,
    on_facts,
    report_partial,
    report_partial_on,
    row_of,
    rows_of,
    snapshot_filter,
    withhold,
)
from insights.settings import InsightSettings, insight_settings
from policy.predicates import ScopeColumns
from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.records import CUSTOMERS, TICKETS
from schema.enums import TicketPriority, TicketStatus
from schema.insights import (
    AssigneeBacklog,
    InsightFilter,
    PriorityCount,
    ServiceBoard,
    StatusCount,
)

UNRESOLVED = ("OPEN", "IN_PROGRESS")
SECONDS_PER_HOUR = 3_600
UNASSIGNED = 0  # stands for "nobody" in the grouping, where NULL means "hidden from the caller"


def _masks(*gates: Gate) -> list:  # type: ignore[type-arg]  # SQL boolean clauses
    return [g.mask for g in gates if g.mask is not None]


@dataclass
class Figures:
    """What either path computes; `service_board` turns it into the response."""

    total: int = 0
    median: float | None = None
    p90: float | None = None
    average: float | None = None
    by_status: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    past_by_priority: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    backlog: dict[int, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: dict.fromkeys(UNRESOLVED, 0))
    )

    def fold(self, state: str | None, level: str | None, who: int | None, count: int,
             past: int) -> None:  # fmt: skip
        if state is not None:
            self.by_status[state] += count
            if state in UNRESOLVED and who is not None:
                self.backlog[who][state] += count
        if level is not None:
            self.past_by_priority[level] += past


async def service_board(context: RequestContext, filter: InsightFilter | None) -> ServiceBoard:
    computed_at = datetime.now(UTC)
    settings = insight_settings(context)
    scope = InsightScope(context, Resource.TICKET, TICKETS)
    t = TICKETS.c
    where = filter_clauses(
        scope,
        filter,
        owner=(InsightScope(context, Resource.CUSTOMER, CUSTOMERS), "owner", CUSTOMERS.c.owner_id),
        created=(scope, "openedAt", t.opened_at),
    )
    status, priority, assignee = (scope.dimension(f) for f in ("status", "priority", "assignee"))
    opened, resolved, satisfaction = (
        scope.value(f) for f in ("openedAt", "resolvedAt", "satisfaction")
    )
    gates = (status, priority, assignee, opened, resolved, satisfaction)
    withhold(context, *gates)
    hours_hidden = opened.denied or resolved.denied
    sla_hidden = status.denied or priority.denied or opened.denied

    figures = Figures()
    is_snapshot = False
    if not scope.is_empty:
        snapshot_at = None
        if _snapshot_may_serve(filter, settings):
            predicates = [context.decisions.rows(Resource.TICKET, Action.READ)] + [
                context.decisions.field(Resource.TICKET, g.type_field.split(".")[1], Action.READ)
                for g in gates
            ]
            snapshot_at = await snapshots.serving_at(context, snapshots.SERVICE, predicates)
        if snapshot_at is not None:
            figures = await _from_snapshot(scope, filter, gates, settings, hours_hidden)
            computed_at, is_snapshot = snapshot_at, True
        else:
            figures = await _live(scope, where, gates, settings, hours_hidden, computed_at)
    scope.note_read("serviceBoard", [g.type_field.split(".")[1] for g in gates if not g.denied])
    return ServiceBoard(
        total_count=figures.total,
        by_status=None
        if status.denied
        else [StatusCount(status=s, count=figures.by_status[s.value]) for s in TicketStatus],
        median_hours_to_resolve=None if hours_hidden else figures.median,
        p90_hours_to_resolve=None if hours_hidden else figures.p90,
        satisfaction_average=None if satisfaction.denied else figures.average,
        backlog=None if status.denied or assignee.denied else _backlog(figures.backlog),
        past_sla=None if sla_hidden else sum(figures.past_by_priority.values()),
        past_sla_by_priority=None if sla_hidden else _past_sla(figures.past_by_priority, settings),
        computed_at=computed_at,
        is_snapshot=is_snapshot,
    )


def _snapshot_may_serve(filter: InsightFilter | None, settings: InsightSettings) -> bool:
    if filter is not None and (filter.from_ is not None or filter.to is not None):
        return False  # the snapshot has no time axis
    return all(settings.sla_hours(p.value) <= snapshots.AGE_CAP_HOURS for p in TicketPriority)


async def _live(
    scope: InsightScope,
    where: list[ColumnElement[bool]],
    gates: tuple[Gate, ...],
    settings: InsightSettings,
    hours_hidden: bool,
    now: datetime,
) -> Figures:
    status, priority, assignee, opened, resolved, satisfaction = gates
    context, t, figures = scope.context, TICKETS.c, Figures()
    hours = func.extract("epoch", t.resolved_at - t.opened_at) / literal(SECONDS_PER_HOUR)
    hours = case((and_(true(), *_masks(opened, resolved)), hours))
    if hours_hidden:
        hours = literal(None)
    distribution = (
        select(
            func.count(),
            func.percentile_cont(0.5).within_group(hours),
            func.percentile_cont(0.9).within_group(hours),
            func.avg(satisfaction.column(t.satisfaction)),
        )
        .select_from(scope.from_clause())
        .where(*scope.where(), *where)
    )
    row = await row_of(context, distribution)
    figures.total = row[0]
    figures.median = None if row[1] is None else float(row[1])
    figures.p90 = None if row[2] is None else float(row[2])
    figures.average = None if row[3] is None else float(row[3])

    sla = case({p.value: settings.sla_hours(p.value) for p in TicketPriority}, value=t.priority)
    past_due = and_(
        t.status.in_(UNRESOLVED),
        t.opened_at + func.make_interval(0, 0, 0, 0, sla) < now,
        *_masks(status, priority, opened),
    )
    status_key = status.column(t.status)
    priority_key = priority.column(t.priority)
    assignee_key = assignee.column(func.coalesce(t.assignee_id, UNASSIGNED))
    grouped = (
        select(status_key, priority_key, assignee_key, func.count(),
               func.count().filter(past_due))
        .select_from(scope.from_clause())
        .where(*scope.where(), *where)
        .group_by(status_key, priority_key, assignee_key)
    )  # fmt: skip
    for state, level, who, count, past in await rows_of(context, grouped):
        figures.fold(state, level, who, count, past)
    await report_partial(scope, where, list(gates))
    return figures


async def _from_snapshot(
    scope: InsightScope,
    filter: InsightFilter | None,
    live_gates: tuple[Gate, ...],
    settings: InsightSettings,
    hours_hidden: bool,
) -> Figures:
    """The same figures from the pre-aggregated views, the caller's predicates applied to the
    scope facts each aggregated row keeps."""
    context, figures = scope.context, Figures()
    g, r = snapshots.TICKET_GROUPS.c, snapshots.TICKET_RESOLUTIONS.c
    facts = ScopeColumns(g.owner_id, g.department_id, None)
    gates = tuple(on_facts(scope, gate, facts) for gate in live_gates)
    status, priority, assignee, opened, _, satisfaction = gates
    where = [scope.rows.sql(facts), *snapshot_filter(context, filter, facts)]
    sla = case({p.value: settings.sla_hours(p.value) for p in TicketPriority}, value=g.priority)
    past_due = and_(g.status.in_(UNRESOLVED), g.age_hours >= sla, *_masks(status, priority, opened))
    status_key = status.column(g.status)
    priority_key = priority.column(g.priority)
    assignee_key = assignee.column(g.assignee_id)
    grouped = (
        select(status_key, priority_key, assignee_key, func.sum(g.tickets),
               func.sum(g.tickets).filter(past_due),
               func.sum(satisfaction.column(g.satisfaction_sum)),
               func.sum(satisfaction.column(g.satisfaction_count)))
        .where(*where)
        .group_by(status_key, priority_key, assignee_key)
    )  # fmt: skip
    scores = answers = 0
    for state, level, who, count, past, score_sum, score_count in await rows_of(context, grouped):
        figures.total += int(count)
        figures.fold(state, level, who, int(count), int(past or 0))
        scores += int(score_sum or 0)
        answers += int(score_count or 0)
    figures.average = scores / answers if answers else None
    await report_partial_on(context, snapshots.TICKET_GROUPS, where, gates)
    if hours_hidden:
        return figures
    resolution_facts = ScopeColumns(r.owner_id, r.department_id, None)
    hour_masks = _masks(*(on_facts(scope, gate, resolution_facts) for gate in live_gates[3:5]))
    statement = (
        select(r.bucket, func.sum(r.tickets))
        .where(
            scope.rows.sql(resolution_facts),
            *snapshot_filter(context, filter, resolution_facts),
            *hour_masks,
        )
        .group_by(r.bucket)
        .order_by(r.bucket)
    )
    buckets = [(bucket, int(n)) for bucket, n in await rows_of(context, statement)]
    if buckets:
        figures.median = snapshots.percentile(buckets, 0.5)
        figures.p90 = snapshots.percentile(buckets, 0.9)
    return figures


def _backlog(backlog: dict[int, dict[str, int]]) -> list[AssigneeBacklog]:
    entries = [
        AssigneeBacklog(
            open=counts["OPEN"],
            in_progress=counts["IN_PROGRESS"],
            assignee_pk=None if who == UNASSIGNED else who,
        )
        for who, counts in backlog.items()
        if counts["OPEN"] or counts["IN_PROGRESS"]
    ]
    entries.sort(key=lambda e: (-(e.open + e.in_progress), e.assignee_pk or 0))
    return entries


def _past_sla(past: dict[str, int], settings: InsightSettings) -> list[PriorityCount]:
    return [
        PriorityCount(priority=p, count=past[p.value], sla_hours=settings.sla_hours(p.value))
        for p in TicketPriority
    ]
