"""leaderboard against the hand-worked book of tests/insights/conftest.py.

In the last 30 days: customers 3 (frank) and 4 (bob) were created; opportunity 2 (alice,
20 000) was won; interactions 3, 4 (alice), 5 (bob) and 7 (admin, on customer 7) were logged.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.insights.conftest import InsightClient, forbidden_fields

QUERY = """query Board($period: InsightPeriod!) { leaderboard(period: $period) { from to
    entries { owner { username } newCustomers wonCount wonAmount interactionsLogged } } }"""


def rows(body: dict[str, Any]) -> list[tuple[str, Any, Any, Any, Any]]:
    return [
        (
            e["owner"]["username"],
            e["newCustomers"],
            e["wonCount"],
            None if e["wonAmount"] is None else Decimal(e["wonAmount"]),
            e["interactionsLogged"],
        )
        for e in body["data"]["leaderboard"]["entries"]
    ]


async def test_sales_manager_ranks_the_sales_subtree(insights: InsightClient) -> None:
    body = await insights.query("bob", QUERY, {"period": "LAST_30_DAYS"})
    assert "errors" not in body
    assert rows(body) == [
        ("alice", 0, 1, Decimal(20000), 2),
        ("bob", 1, 0, Decimal(0), 1),
        ("frank", 1, 0, Decimal(0), 0),
    ]


async def test_sales_rep_ranks_only_her_own_rows(insights: InsightClient) -> None:
    body = await insights.query("alice", QUERY, {"period": "LAST_30_DAYS"})
    assert rows(body) == [("alice", 0, 1, Decimal(20000), 2)]


async def test_finance_counts_no_interactions(insights: InsightClient) -> None:
    body = await insights.query("dave", QUERY, {"period": "LAST_30_DAYS"})
    assert "errors" not in body
    # customer 7 (admin) was created 35 days ago; finance reads no interaction
    assert rows(body) == [
        ("alice", 0, 1, Decimal(20000), 0),
        ("bob", 1, 0, Decimal(0), 0),
        ("frank", 1, 0, Decimal(0), 0),
    ]


async def test_service_agent_gets_no_amounts(insights: InsightClient) -> None:
    body = await insights.query("carol", QUERY, {"period": "LAST_30_DAYS"})
    assert rows(body) == [("bob", 1, 0, None, 0), ("frank", 1, 0, None, 0)]
    assert forbidden_fields(body) == {"Opportunity.amount"}


async def test_compliance_gets_an_empty_board(insights: InsightClient) -> None:
    body = await insights.query("erin", QUERY, {"period": "LAST_30_DAYS"})
    assert rows(body) == []


async def test_shorter_period_narrows_every_figure(insights: InsightClient) -> None:
    body = await insights.query("bob", QUERY, {"period": "LAST_7_DAYS"})
    assert rows(body) == [("bob", 0, 0, Decimal(0), 1)]


async def test_partner_cannot_rank_owners_it_may_not_see(
    insights: InsightClient, partner: str
) -> None:
    body = await insights.query(partner, QUERY, {"period": "LAST_30_DAYS"})
    assert rows(body) == []
    assert {"Customer.owner", "Opportunity.amount"} <= forbidden_fields(body)
