"""`attention`: the customers in scope that need someone now, with every reason that applies.

Reasons, thresholds from `InsightSettings`:
- SILENT: no interaction for `silent_days` (`silent_days_level_a` for level A), counted from the
  last interaction or, with none, from the customer's creation;
- CHURN_RISK: won amount in the last `churn_window_days` below `churn_ratio` of the window before
  (and something was won before);
- OVERDUE_FOLLOW_UP: the latest interaction set a next follow-up date that has passed;
- URGENT_TICKETS: an URGENT ticket is open or in progress;
- CONTRACT_EXPIRING: an ACTIVE contract ends within `DOSSIER_RENEWAL_DAYS` (合同到期);
- PAYMENT_OVERDUE: a payment is unpaid past its due date (回款逾期).
A reason resting on a field the caller may not read is not evaluated (FORBIDDEN, and listed in
`withheldReasons`); its children are read within their own row scopes. One statement evaluates
every customer in scope, orders by the number of reasons, then id, and counts them all.

From the snapshot (`insight_attention_facts`, migration 0005: one narrow row per customer with
its scope facts, level, last activity, latest follow-up plan, won amounts of the two churn windows
and open urgent tickets), the statement reads that one table instead of joining four; the
caller's row scopes and masks compile onto its owner, department and customer id, so every
predicate applies, a partner's too. Silence and due dates are judged against the clock now; the
facts are as of the refresh (the response says when). A churn window other than
`snapshots.CHURN_WINDOW_DAYS` is computed live and joined on.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, false, func, literal, or_, select, true, tuple_
from sqlalchemy.dialects.postgresql import distinct_on

from db.models.interaction import Interaction
from insights import snapshots
from insights.funnel import CHANGES
from insights.rights import Gate, InsightScope, on_facts, rows_of, withhold
from insights.settings import insight_settings
from policy.predicates import ScopeColumns, implies
from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.errors import BadUserInputError
from resolvers.pagination import checked_first, decode_cursor, encode_cursor
from resolvers.records import CONTRACTS, CUSTOMERS, OPPORTUNITIES, PAYMENTS, TICKETS
from resolvers.reminders import renewal_days
from schema.insights import AttentionConnection, AttentionEdge, AttentionItem, AttentionReason
from schema.node import PageInfo

INTERACTIONS = Interaction.__table__
SECONDS_PER_DAY = 86_400
UNRESOLVED = ("OPEN", "IN_PROGRESS")


def _all(*clauses: ColumnElement[bool]) -> ColumnElement[bool]:
    return and_(true(), *clauses)


def _masks(*gates: Gate) -> list[ColumnElement[bool]]:
    return [g.mask for g in gates if g.mask is not None]


async def attention(
    context: RequestContext, first: int | None, after: str | None
) -> AttentionConnection:
    limit = checked_first(first)
    position = decode_cursor(after) if after is not None else None
    if position is not None and not isinstance(position[0], int):
        raise BadUserInputError("malformed cursor", argument="after")
    settings = insight_settings(context)
    now = datetime.now(UTC)
    customers = InsightScope(context, Resource.CUSTOMER, CUSTOMERS)
    if customers.is_empty:
        return _connection([], [], False, 0, [])
    deals = InsightScope(context, Resource.OPPORTUNITY, OPPORTUNITIES)
    tickets = InsightScope(context, Resource.TICKET, TICKETS)
    notes = InsightScope(context, Resource.INTERACTION, INTERACTIONS)  # type: ignore[arg-type]  # a declarative table
    contracts = InsightScope(context, Resource.CONTRACT, CONTRACTS)
    payments = InsightScope(context, Resource.PAYMENT, PAYMENTS)
    gates: dict[AttentionReason, tuple[Gate, ...]] = {
        AttentionReason.SILENT: (
            customers.value("lastInteractionAt"),
            customers.value("createdAt"),
            customers.dimension("level"),
        ),
        AttentionReason.CHURN_RISK: (deals.dimension("stage"), deals.value("amount")),
        AttentionReason.OVERDUE_FOLLOW_UP: (
            notes.value("nextFollowUpOn"),
            notes.value("occurredAt"),
        ),
        AttentionReason.URGENT_TICKETS: (
            tickets.dimension("status"),
            tickets.dimension("priority"),
        ),
        AttentionReason.CONTRACT_EXPIRING: (
            contracts.dimension("status"),
            contracts.dimension("endsOn"),
        ),
        AttentionReason.PAYMENT_OVERDUE: (
            payments.dimension("dueOn"),
            payments.dimension("paidOn"),
        ),
    }
    withheld = [
        reason for reason, reason_gates in gates.items() if withhold(context, *reason_gates)
    ]
    predicates = [
        context.decisions.rows(scope.resource, Action.READ)
        for scope in (customers, deals, tickets, notes)
    ]  # contracts and payments are read live, joined on: no snapshot holds them
    snapshot_at = await snapshots.serving_at(
        context, snapshots.ATTENTION, predicates, keeps_customers=True
    )
    build = _snapshot_flags if snapshot_at is not None else _live_flags
    source, pk, where, flags, details = build(
        (customers, deals, tickets, notes), gates, withheld, now, settings
    )
    source = _money_flags(
        source, pk, (contracts, payments), gates, withheld, now.date(), flags, details
    )
    if not flags:
        return _connection([], [], False, 0, withheld, snapshot_at)
    flag_columns = {reason.value: flag.label(reason.value) for reason, flag in flags.items()}
    count = sum((case((flag, 1), else_=0) for flag in flags.values()), literal(0))
    flagged = (
        select(
            pk.label("pk"),
            count.label("reasons"),
            *flag_columns.values(),
            *(value.label(name) for name, value in details.items()),
        )
        .select_from(source)
        .where(*where, or_(*flags.values()))
        .subquery("flagged")
    )
    # the page and the count apart: a count over the page's rows would sort every flagged
    # customer, where the page alone is a top-N sort
    statement = select(flagged)
    if position is not None:
        reasons_after, pk_after = position
        statement = statement.where(
            tuple_(-flagged.c.reasons, flagged.c.pk) > tuple_(-reasons_after, pk_after)
        )
    statement = statement.order_by(flagged.c.reasons.desc(), flagged.c.pk).limit(limit + 1)
    rows = await rows_of(context, statement)
    total = await _count(context, flagged)
    has_next = len(rows) > limit
    rows = rows[:limit]
    items = [_item(row._mapping, flags) for row in rows]
    cursors = [encode_cursor(row._mapping["reasons"], row._mapping["pk"]) for row in rows]
    _note_reads(customers, deals, tickets, notes, flags, [item.customer_pk for item in items])
    for reason, scope, names in (
        (AttentionReason.CONTRACT_EXPIRING, contracts, ["status", "endsOn"]),
        (AttentionReason.PAYMENT_OVERDUE, payments, ["dueOn", "paidOn"]),
    ):
        if reason in flags:
            scope.note_read("attention", names)
    return _connection(items, cursors, has_next, total, withheld, snapshot_at)


Scopes = tuple[InsightScope, InsightScope, InsightScope, InsightScope]
Gates = dict[AttentionReason, tuple[Gate, ...]]
Built = tuple[Any, Any, list[ColumnElement[bool]], dict[AttentionReason, Any], dict[str, Any]]


def _live_flags(
    scopes: Scopes, gates: Gates, withheld: list[AttentionReason], now: datetime, settings: Any
) -> Built:
    """Flags and details over the live tables: `customers`, each child joined per customer."""
    customers, deals, tickets, notes = scopes
    c, today = CUSTOMERS.c, now.date()
    source: Any = CUSTOMERS
    flags: dict[AttentionReason, ColumnElement[bool]] = {}
    details: dict[str, Any] = {}
    if AttentionReason.SILENT not in withheld:
        flags[AttentionReason.SILENT], details["days_silent"] = _silence(
            c.last_interaction_at, c.created_at, c.level, gates[AttentionReason.SILENT], now,
            settings,
        )  # fmt: skip
    if AttentionReason.CHURN_RISK not in withheld:
        won = _won_windows(deals, gates[AttentionReason.CHURN_RISK], now, settings)
        source = source.outerjoin(won, won.c.customer_id == c.id)
        flags[AttentionReason.CHURN_RISK] = _churn(won.c.recent, won.c.prior, settings)
    if AttentionReason.OVERDUE_FOLLOW_UP not in withheld:
        plan = _latest_plans(notes, gates[AttentionReason.OVERDUE_FOLLOW_UP])
        source = source.outerjoin(plan, plan.c.customer_id == c.id)
        flags[AttentionReason.OVERDUE_FOLLOW_UP] = func.coalesce(plan.c.due < today, false())
        details["follow_up_due_on"] = case((plan.c.due < today, plan.c.due))
    if AttentionReason.URGENT_TICKETS not in withheld:
        urgent = _urgent_tickets(tickets, gates[AttentionReason.URGENT_TICKETS])
        source = source.outerjoin(urgent, urgent.c.customer_id == c.id)
        flags[AttentionReason.URGENT_TICKETS] = func.coalesce(urgent.c.open_urgent, 0) > 0
        details["open_urgent_tickets"] = func.coalesce(urgent.c.open_urgent, 0)
    return source, c.id, customers.where(), flags, details


def _snapshot_flags(
    scopes: Scopes, gates: Gates, withheld: list[AttentionReason], now: datetime, settings: Any
) -> Built:
    """The same flags over the per-customer facts: each child scope and mask is a predicate on
    the customer's facts, so it picks whole customers' facts in or out."""
    customers, deals, tickets, notes = scopes
    f, today = snapshots.ATTENTION_FACTS.c, now.date()
    facts = ScopeColumns(f.owner_id, f.department_id, f.customer_id)
    scope_of = {
        AttentionReason.SILENT: customers,
        AttentionReason.CHURN_RISK: deals,
        AttentionReason.OVERDUE_FOLLOW_UP: notes,
        AttentionReason.URGENT_TICKETS: tickets,
    }

    def readable(reason: AttentionReason) -> ColumnElement[bool]:
        """The reason's scope and masks, less those the customer scope already implies (one
        `IN` per row instead of four, for a manager's subtree)."""
        scope = scope_of[reason]
        clauses = [] if implies(customers.rows, scope.rows) else [scope.rows.sql(facts)]
        for gate in gates[reason]:
            field = gate.type_field.split(".", 1)[1]
            decision = scope.context.decisions.field(scope.resource, field, Action.READ)
            if gate.is_partial and not implies(customers.rows, decision):
                clauses.append(decision.sql(facts))
        return _all(*clauses)

    source: Any = snapshots.ATTENTION_FACTS
    flags: dict[AttentionReason, ColumnElement[bool]] = {}
    details: dict[str, Any] = {}
    if AttentionReason.SILENT not in withheld:
        silent = tuple(on_facts(customers, g, facts) for g in gates[AttentionReason.SILENT])
        flags[AttentionReason.SILENT], details["days_silent"] = _silence(
            f.quiet_since, f.quiet_since, f.level, silent, now, settings
        )
    if AttentionReason.CHURN_RISK not in withheld:
        if settings.churn_window_days == snapshots.CHURN_WINDOW_DAYS:
            recent, prior = f.won_recent, f.won_prior
        else:  # the snapshot's windows are not the ones asked for
            won = _won_windows(deals, gates[AttentionReason.CHURN_RISK], now, settings)
            source = source.outerjoin(won, won.c.customer_id == f.customer_id)
            recent, prior = won.c.recent, won.c.prior
        flags[AttentionReason.CHURN_RISK] = and_(
            readable(AttentionReason.CHURN_RISK), _churn(recent, prior, settings)
        )
    if AttentionReason.OVERDUE_FOLLOW_UP not in withheld:
        due = case((readable(AttentionReason.OVERDUE_FOLLOW_UP), f.follow_up_due))
        flags[AttentionReason.OVERDUE_FOLLOW_UP] = func.coalesce(due < today, false())
        details["follow_up_due_on"] = case((due < today, due))
    if AttentionReason.URGENT_TICKETS not in withheld:
        urgent = case((readable(AttentionReason.URGENT_TICKETS), f.open_urgent), else_=0)
        flags[AttentionReason.URGENT_TICKETS] = urgent > 0
        details["open_urgent_tickets"] = urgent
    return source, f.customer_id, [customers.rows.sql(facts)], flags, details


def _money_flags(
    source: Any,
    pk: Any,
    scopes: tuple[InsightScope, InsightScope],
    gates: Gates,
    withheld: list[AttentionReason],
    today: date,
    flags: dict[AttentionReason, Any],
    details: dict[str, Any],
) -> Any:
    """CONTRACT_EXPIRING and PAYMENT_OVERDUE, over the live tables on either path: one grouped
    subquery each, joined on the customer, within the contracts' and payments' own scopes."""
    contracts, payments = scopes
    if AttentionReason.CONTRACT_EXPIRING not in withheld and not contracts.is_empty:
        k = CONTRACTS.c
        ending = (
            select(k.customer_id, func.min(k.ends_on).label("ends_on"))
            .select_from(contracts.from_clause())
            .where(
                *contracts.where(),
                k.status == "ACTIVE",
                k.ends_on.between(today, today + timedelta(days=renewal_days())),
                *_masks(*gates[AttentionReason.CONTRACT_EXPIRING]),
            )
            .group_by(k.customer_id)
            .subquery("ending")
        )
        source = source.outerjoin(ending, ending.c.customer_id == pk)
        flags[AttentionReason.CONTRACT_EXPIRING] = ending.c.ends_on.is_not(None)
        details["contract_ends_on"] = ending.c.ends_on
    if AttentionReason.PAYMENT_OVERDUE not in withheld and not payments.is_empty:
        p = PAYMENTS.c
        overdue = (
            select(p.customer_id, func.count().label("overdue"))
            .select_from(payments.from_clause())
            .where(
                *payments.where(),
                p.paid_on.is_(None),
                p.due_on < today,
                *_masks(*gates[AttentionReason.PAYMENT_OVERDUE]),
            )
            .group_by(p.customer_id)
            .subquery("overdue")
        )
        source = source.outerjoin(overdue, overdue.c.customer_id == pk)
        flags[AttentionReason.PAYMENT_OVERDUE] = func.coalesce(overdue.c.overdue, 0) > 0
        details["overdue_payments"] = func.coalesce(overdue.c.overdue, 0)
    return source


def _silence(
    last: Any, created: Any, level: Any, gates: tuple[Gate, ...], now: datetime, settings: Any
) -> tuple[ColumnElement[bool], Any]:
    quiet_since = func.coalesce(last, created)
    since = case(
        (level == "A", literal(now - timedelta(days=settings.silent_days_level_a))),
        else_=literal(now - timedelta(days=settings.silent_days)),
    )  # bounds computed here: no interval arithmetic per row
    flag = _all(quiet_since < since, *_masks(*gates))
    days = func.floor(func.extract("epoch", literal(now) - quiet_since) / SECONDS_PER_DAY)
    return flag, case((_all(*_masks(*gates)), days))


def _churn(recent: Any, prior: Any, settings: Any) -> ColumnElement[bool]:
    return and_(prior > 0, func.coalesce(recent, 0) < prior * settings.churn_ratio)


async def _count(context: RequestContext, flagged: Any) -> int:
    """Every flagged customer in scope, whichever page is asked for."""
    return int((await context.db.execute(select(func.count()).select_from(flagged))).scalar_one())


def _won_windows(scope: InsightScope, gates: tuple[Gate, ...], now: datetime, settings: Any) -> Any:
    """Won amount per customer in the last window and in the window before it."""
    o, h = OPPORTUNITIES.c, CHANGES.c
    stage, amount = gates
    window = timedelta(days=settings.churn_window_days)
    value = amount.column(o.amount)
    return (
        select(
            o.customer_id,
            func.sum(value).filter(h.at >= now - window).label("recent"),
            func.sum(value).filter(h.at < now - window).label("prior"),
        )
        .select_from(scope.from_clause().join(CHANGES, h.opportunity_id == o.id))
        .where(
            *scope.where(),
            h.to_stage == "WON",
            h.at >= now - 2 * window,
            h.at < now,
            o.stage == "WON",
            *_masks(stage),
        )
        .group_by(o.customer_id)
        .subquery("won")
    )


def _latest_plans(scope: InsightScope, gates: tuple[Gate, ...]) -> Any:
    """The next follow-up date set by each customer's latest interaction."""
    i = INTERACTIONS.c
    latest = (
        select(i.customer_id, i.next_follow_up_on.label("due"))
        .select_from(scope.from_clause())
        .where(*scope.where(), *_masks(*gates))
        .order_by(i.customer_id, i.occurred_at.desc(), i.id.desc())
        .ext(distinct_on(i.customer_id))
    )
    return latest.subquery("plan")


def _urgent_tickets(scope: InsightScope, gates: tuple[Gate, ...]) -> Any:
    t = TICKETS.c
    return (
        select(t.customer_id, func.count().label("open_urgent"))
        .select_from(scope.from_clause())
        .where(
            *scope.where(),
            t.priority == "URGENT",
            t.status.in_(UNRESOLVED),
            *_masks(*gates),
        )
        .group_by(t.customer_id)
        .subquery("urgent")
    )


def _item(row: Any, flags: dict[AttentionReason, Any]) -> AttentionItem:
    due = row.get("follow_up_due_on")
    return AttentionItem(
        reasons=[reason for reason in flags if row[reason.value]],
        days_silent=None if row.get("days_silent") is None else int(row["days_silent"]),
        follow_up_due_on=due if isinstance(due, date) else None,
        open_urgent_tickets=row.get("open_urgent_tickets"),
        contract_ends_on=row.get("contract_ends_on"),
        overdue_payments=row.get("overdue_payments"),
        customer_pk=row["pk"],
    )


def _note_reads(
    customers: InsightScope,
    deals: InsightScope,
    tickets: InsightScope,
    notes: InsightScope,
    flags: dict[AttentionReason, Any],
    ids: list[int],
) -> None:
    fields = {
        AttentionReason.SILENT: (customers, ["lastInteractionAt", "createdAt", "level"]),
        AttentionReason.CHURN_RISK: (deals, ["stage", "amount"]),
        AttentionReason.OVERDUE_FOLLOW_UP: (notes, ["nextFollowUpOn", "occurredAt"]),
        AttentionReason.URGENT_TICKETS: (tickets, ["status", "priority"]),
    }
    customers.note_read("attention", [], ids)
    for reason in flags:
        if reason in fields:  # the money reasons are noted by the caller
            scope, names = fields[reason]
            scope.note_read("attention", names)


def _connection(
    items: list[AttentionItem],
    cursors: list[str],
    has_next: bool,
    total: int,
    withheld: list[AttentionReason],
    snapshot_at: datetime | None = None,
) -> AttentionConnection:
    return AttentionConnection(
        edges=[AttentionEdge(cursor=c, node=i) for c, i in zip(cursors, items, strict=True)],
        nodes=items,
        page_info=PageInfo(has_next_page=has_next, end_cursor=cursors[-1] if cursors else None),
        total_count=total,
        withheld_reasons=withheld,
        computed_at=snapshot_at or datetime.now(UTC),
        is_snapshot=snapshot_at is not None,
    )
