"""`serviceBoard`: ticket counts, resolution times, satisfaction, backlog and SLA breaches.

Two statements over the tickets in scope: one row of distributions (percentiles need the rows
themselves), and counts grouped by status, priority and assignee, which Python folds into the
per-status, per-priority and per-assignee figures.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from sqlalchemy import and_, case, func, literal, select, true

from policy.vocabulary import Resource
from resolvers.context import RequestContext
from resolvers.insights.rights import (
    Gate,
    InsightScope,
    filter_clauses,
    report_partial,
    row_of,
    rows_of,
    withhold,
)
from resolvers.insights.settings import InsightSettings, insight_settings
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
    withhold(context, status, priority, assignee, opened, resolved, satisfaction)
    hours_hidden = opened.denied or resolved.denied
    sla_hidden = status.denied or priority.denied or opened.denied

    total = 0
    median = p90 = average = None
    by_status: dict[str, int] = defaultdict(int)
    past_by_priority: dict[str, int] = defaultdict(int)
    backlog: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(UNRESOLVED, 0))
    if not scope.is_empty:
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
        total = row[0]
        median = None if hours_hidden or row[1] is None else float(row[1])
        p90 = None if hours_hidden or row[2] is None else float(row[2])
        average = None if row[3] is None else float(row[3])

        sla = case({p.value: settings.sla_hours(p.value) for p in TicketPriority}, value=t.priority)
        past_due = and_(
            t.status.in_(UNRESOLVED),
            t.opened_at + func.make_interval(0, 0, 0, 0, sla) < computed_at,
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
            if state is not None:
                by_status[state] += count
                if state in UNRESOLVED and who is not None:
                    backlog[who][state] += count
            if level is not None:
                past_by_priority[level] += past
        await report_partial(
            scope, where, [status, priority, assignee, opened, resolved, satisfaction]
        )
    fields = (status, priority, assignee, opened, resolved, satisfaction)
    scope.note_read("serviceBoard", [g.type_field.split(".")[1] for g in fields if not g.denied])
    return ServiceBoard(
        total_count=total,
        by_status=None
        if status.denied
        else [StatusCount(status=s, count=by_status[s.value]) for s in TicketStatus],
        median_hours_to_resolve=median,
        p90_hours_to_resolve=p90,
        satisfaction_average=None if satisfaction.denied else average,
        backlog=None if status.denied or assignee.denied else _backlog(backlog),
        past_sla=None if sla_hidden else sum(past_by_priority.values()),
        past_sla_by_priority=None if sla_hidden else _past_sla(past_by_priority, settings),
        computed_at=computed_at,
    )


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
