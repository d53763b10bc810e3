"""`Opportunity.stageHistory` and `Customer.timeline`, one statement per level of a request.

Every item of a timeline belongs to the customer it hangs off, so whether the caller may see a
kind of item is a question about that customer's facts, answered in Python per customer before
the statement is built: a kind whose rows, or whose time field, the caller may not read on that
customer is not selected for it at all. What is left is one `UNION ALL` over the kinds, ranked
per customer, newest first.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    DateTime,
    Integer,
    and_,
    bindparam,
    cast,
    func,
    literal,
    select,
    union_all,
)
from strawberry.dataloader import DataLoader

from db.models import OpportunityStageChange
from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.pagination import checked_first, decode_cursor, encode_cursor
from resolvers.records import (
    CONTRACTS,
    INTERACTIONS,
    OPPORTUNITIES,
    PAYMENTS,
    TICKETS,
)
from schema.enums import OpportunityStage
from schema.node import Edge, PageInfo
from schema.timeline import StageChange, TimelineConnection, TimelineItem, TimelineKind

CHANGES = OpportunityStageChange.__table__
STAGES = {s.value: s for s in OpportunityStage}

# kind → (type of its node, resource, the field its time reveals)
KINDS: dict[TimelineKind, tuple[str, Resource, str]] = {
    TimelineKind.INTERACTION: ("Interaction", Resource.INTERACTION, "occurredAt"),
    TimelineKind.STAGE_CHANGE: ("Opportunity", Resource.OPPORTUNITY, "stageHistory"),
    TimelineKind.TICKET: ("Ticket", Resource.TICKET, "openedAt"),
    TimelineKind.CONTRACT: ("Contract", Resource.CONTRACT, "startsOn"),
    TimelineKind.PAYMENT: ("Payment", Resource.PAYMENT, "paidOn"),
}


@dataclass(frozen=True)
class TimelineKey:
    customer_pk: int
    facts: tuple[int | None, int | None, int]
    first: int
    after: int


class HistoryLoader:
    def __init__(self, context: RequestContext) -> None:
        self.context = context
        self._stages: DataLoader[int, list[StageChange]] = DataLoader(load_fn=self._load_stages)
        self._timelines: DataLoader[TimelineKey, TimelineConnection] = DataLoader(
            load_fn=self._load_timelines
        )

    # -- stage history ----------------------------------------------------------------------

    async def stage_history(self, opportunity: Any) -> list[StageChange] | None:
        """The opportunity was read under its row scope; the history needs its stage too."""
        for name in ("stageHistory", "stage"):
            if name in opportunity.withheld:
                self.context.deny("Opportunity.stageHistory")
                return None
        return await self._stages.load(opportunity.pk)

    async def _load_stages(self, pks: list[int]) -> list[list[StageChange]]:
        statement = (
            select(CHANGES.c.opportunity_id, CHANGES.c.from_stage, CHANGES.c.to_stage,
                   CHANGES.c.at, CHANGES.c.actor)
            .where(CHANGES.c.opportunity_id.in_(sorted(set(pks))))
            .order_by(CHANGES.c.opportunity_id, CHANGES.c.at, CHANGES.c.id)
        )  # fmt: skip
        found: dict[int, list[StageChange]] = defaultdict(list)
        for row in (await self.context.db.execute(statement)).all():
            found[row.opportunity_id].append(
                StageChange(
                    from_=STAGES.get(row.from_stage),
                    to=STAGES.get(row.to_stage),
                    at=row.at,
                    by=row.actor,
                )  # fmt: skip
            )
        return [found.get(pk, []) for pk in pks]

    # -- timeline -----------------------------------------------------------------------------

    async def timeline(
        self, customer: Any, first: int | None, after: str | None
    ) -> TimelineConnection | None:
        if "timeline" in customer.withheld:
            self.context.deny("Customer.timeline")
            return None
        position = decode_cursor(after)[1] if after is not None else 0
        facts = (customer.owner_id, customer.department_id, customer.pk)
        key = TimelineKey(customer.pk, facts, checked_first(first), position)
        return await self._timelines.load(key)

    def _visible_kinds(self, facts: tuple[int | None, int | None, int]) -> list[TimelineKind]:
        decisions = self.context.decisions
        kinds = []
        for kind, (_, resource, time_field) in KINDS.items():
            if not decisions.rows(resource, Action.READ).holds_for(*facts):
                continue
            if not decisions.field(resource, time_field, Action.READ).holds_for(*facts):
                continue
            if kind is TimelineKind.STAGE_CHANGE and not decisions.field(
                resource, "stage", Action.READ
            ).holds_for(*facts):
                continue
            kinds.append(kind)
        return kinds

    async def _load_timelines(self, keys: list[TimelineKey]) -> list[TimelineConnection]:
        by_kind: dict[TimelineKind, set[int]] = defaultdict(set)
        for key in keys:
            for kind in self._visible_kinds(key.facts):
                by_kind[kind].add(key.customer_pk)
        pages: dict[tuple[int, int, int], TimelineConnection] = {}
        groups: dict[tuple[int, int], list[TimelineKey]] = defaultdict(list)
        for key in keys:
            groups[(key.first, key.after)].append(key)
        for (first, after), group in groups.items():
            pages.update(await self._fetch(group, by_kind, first, after))
        return [pages[(k.customer_pk, k.first, k.after)] for k in keys]

    async def _fetch(
        self,
        keys: list[TimelineKey],
        by_kind: dict[TimelineKind, set[int]],
        first: int,
        after: int,
    ) -> dict[tuple[int, int, int], TimelineConnection]:
        wanted = {key.customer_pk for key in keys}
        parts = []
        for kind, customers in by_kind.items():
            ids = sorted(customers & wanted)
            if ids:
                parts.append(_items(kind, ids))
        rows: list[Any] = []
        if parts:
            items = union_all(*parts).subquery()
            ranked = select(
                items,
                func.row_number()
                .over(partition_by=items.c.customer_id,
                      order_by=(items.c.at.desc(), items.c.kind, items.c.pk.desc()))
                .label("position"),
                func.count().over(partition_by=items.c.customer_id).label("total"),
            ).subquery()  # fmt: skip
            statement = (
                select(ranked)
                .where(
                    ranked.c.position > bindparam("after", type_=Integer),
                    ranked.c.position <= bindparam("last", type_=Integer),
                )
                .order_by(ranked.c.customer_id, ranked.c.position)
            )
            parameters = {"after": after, "last": after + first + 1}
            rows = list((await self.context.db.execute(statement, parameters)).all())
        by_customer: dict[int, list[Any]] = defaultdict(list)
        for row in rows:
            by_customer[row.customer_id].append(row)
        result = {}
        for key in keys:
            found = by_customer.get(key.customer_pk, [])
            page, has_next = found[:first], len(found) > first
            nodes = [_item(row) for row in page]
            cursors = [encode_cursor(None, row.position) for row in page]
            result[(key.customer_pk, first, after)] = TimelineConnection(
                edges=[Edge(cursor=c, node=n) for c, n in zip(cursors, nodes, strict=True)],
                nodes=nodes,
                page_info=PageInfo(has_next_page=has_next,
                                   end_cursor=cursors[-1] if cursors else None),
                total_count=found[0].total if found else 0,
            )  # fmt: skip
        return result


def _items(kind: TimelineKind, customer_ids: list[int]) -> Any:
    """One kind's rows of the union: (kind, pk, at, customer, from, to, by)."""
    label = literal(kind.value).label("kind")
    none = literal(None).label
    if kind is TimelineKind.INTERACTION:
        t = INTERACTIONS
        return select(label, t.c.id.label("pk"), t.c.occurred_at.label("at"),
                      t.c.customer_id, none("from_stage"), none("to_stage"),
                      none("actor")).where(t.c.customer_id.in_(customer_ids))  # fmt: skip
    if kind is TimelineKind.TICKET:
        t = TICKETS
        return select(label, t.c.id.label("pk"), t.c.opened_at.label("at"), t.c.customer_id,
                      none("from_stage"), none("to_stage"), none("actor")).where(
            t.c.customer_id.in_(customer_ids), t.c.archived_at.is_(None))  # fmt: skip
    if kind is TimelineKind.CONTRACT:
        t = CONTRACTS
        return select(label, t.c.id.label("pk"), t.c.created_at.label("at"), t.c.customer_id,
                      none("from_stage"), none("to_stage"), none("actor")).where(
            t.c.customer_id.in_(customer_ids))  # fmt: skip
    if kind is TimelineKind.PAYMENT:
        t = PAYMENTS
        at = func.coalesce(cast(t.c.paid_on, DateTime(timezone=True)), t.c.created_at)
        return select(label, t.c.id.label("pk"), at.label("at"), t.c.customer_id,
                      none("from_stage"), none("to_stage"), none("actor")).where(
            t.c.customer_id.in_(customer_ids))  # fmt: skip
    o = OPPORTUNITIES
    return (
        select(label, o.c.id.label("pk"), CHANGES.c.at.label("at"), o.c.customer_id,
               CHANGES.c.from_stage, CHANGES.c.to_stage, CHANGES.c.actor)
        .select_from(CHANGES.join(o, and_(o.c.id == CHANGES.c.opportunity_id)))
        .where(o.c.customer_id.in_(customer_ids), o.c.archived_at.is_(None))
    )  # fmt: skip


def _item(row: Any) -> TimelineItem:
    kind = TimelineKind(row.kind)
    change = None
    if kind is TimelineKind.STAGE_CHANGE:
        change = StageChange(from_=STAGES.get(row.from_stage), to=STAGES.get(row.to_stage),
                             at=row.at, by=row.actor)  # fmt: skip
    return TimelineItem(at=row.at, kind=kind, stage_change=change,
                        type_name=KINDS[kind][0], pk=row.pk)  # fmt: skip
