"""The insight root fields; each hands off to its module, which owns its SQL."""

from __future__ import annotations

from typing import Any

import strawberry

from insights.attention import attention
from insights.funnel import sales_funnel
from insights.leaderboard import leaderboard
from insights.segments import customer_segments
from insights.service import service_board
from schema.insights import (
    AttentionConnection,
    CustomerSegments,
    InsightFilter,
    InsightPeriod,
    Leaderboard,
    SalesFunnel,
    ServiceBoard,
)


@strawberry.type
class InsightsQuery:
    @strawberry.field(description="Opportunities per stage, conversion and time per stage.")
    async def sales_funnel(
        self, info: strawberry.Info, filter: InsightFilter | None = None
    ) -> SalesFunnel:
        return await sales_funnel(info.context, filter)

    @strawberry.field(description="Tickets per status, resolution times, satisfaction, SLA.")
    async def service_board(
        self, info: strawberry.Info, filter: InsightFilter | None = None
    ) -> ServiceBoard:
        return await service_board(info.context, filter)

    @strawberry.field(description="RFM segments, levels, regions and industries of customers.")
    async def customer_segments(
        self, info: strawberry.Info, filter: InsightFilter | None = None
    ) -> CustomerSegments:
        return await customer_segments(info.context, filter)

    @strawberry.field(description="Customers that need someone now, each with its reasons.")
    async def attention(
        self, info: strawberry.Info, first: int | None = 50, after: str | None = None
    ) -> AttentionConnection:
        return await attention(info.context, first, after)

    @strawberry.field(description="Per owner: new customers, won deals, interactions logged.")
    async def leaderboard(
        self, info: strawberry.Info, period: InsightPeriod = InsightPeriod.LAST_30_DAYS
    ) -> Leaderboard:
        return await leaderboard(info.context, period, money=_asks_money(info))


MONEY_FIELDS = frozenset({"contractValueSigned", "amountCollected"})


def _asks_money(info: strawberry.Info) -> bool:
    """Whether the selection names a money column: only then is it computed (and a caller
    without the finance fields told FORBIDDEN)."""

    def names(selections: list[Any]) -> set[str]:
        found: set[str] = set()
        for selection in selections:
            name = getattr(selection, "name", None)
            if name is not None:
                found.add(name)
            found |= names(getattr(selection, "selections", []) or [])
        return found

    return bool(MONEY_FIELDS & names(info.selected_fields))
