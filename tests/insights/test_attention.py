"""attention against the hand-worked book of tests/insights/conftest.py.

Customer 1 (A, silent 40 days > 30; won 20 000 in the last 90 days against 100 000 before;
latest interaction's follow-up 10 days ago; urgent ticket 3 open): all four reasons.
Customer 5 (C, silent 100 days; follow-up 90 days ago): SILENT, OVERDUE_FOLLOW_UP.
Customer 4: urgent ticket 7. Customers 2, 3 and 7 need nobody; customer 6 is archived.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.insights.conftest import InsightClient, day, forbidden_fields

QUERY = """query Attention($first: Int, $after: String) { attention(first: $first, after: $after) {
    totalCount withheldReasons pageInfo { hasNextPage endCursor }
    nodes { reasons daysSilent followUpDueOn openUrgentTickets customer { name } } } }"""
ALL_FOUR = ["SILENT", "CHURN_RISK", "OVERDUE_FOLLOW_UP", "URGENT_TICKETS"]


def listed(body: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return [(n["customer"]["name"], n["reasons"]) for n in body["data"]["attention"]["nodes"]]


async def test_sales_rep_sees_her_customer_with_every_reason(insights: InsightClient) -> None:
    body = await insights.query("alice", QUERY)
    assert "errors" not in body
    attention = body["data"]["attention"]
    assert attention["totalCount"] == 1
    assert attention["withheldReasons"] == []
    (node,) = attention["nodes"]
    assert node["customer"]["name"] == "上海一号"
    assert node["reasons"] == ALL_FOUR
    assert node["daysSilent"] == 40
    assert node["followUpDueOn"] == day(-10).isoformat()
    assert node["openUrgentTickets"] == 1


async def test_sales_manager_pages_through_most_reasons_first(insights: InsightClient) -> None:
    first = await insights.query("bob", QUERY, {"first": 2})
    page = first["data"]["attention"]
    assert page["totalCount"] == 3
    assert listed(first) == [("上海一号", ALL_FOUR), ("天津五号", ["SILENT", "OVERDUE_FOLLOW_UP"])]
    assert page["nodes"][1]["daysSilent"] == 100
    assert page["nodes"][1]["followUpDueOn"] == day(-90).isoformat()
    assert page["pageInfo"]["hasNextPage"] is True
    after = page["pageInfo"]["endCursor"]
    second = await insights.query("bob", QUERY, {"first": 2, "after": after})
    assert listed(second) == [("北京四号", ["URGENT_TICKETS"])]
    assert second["data"]["attention"]["pageInfo"]["hasNextPage"] is False
    assert second["data"]["attention"]["totalCount"] == 3


async def test_service_agent_reasons_without_money_or_interactions(
    insights: InsightClient,
) -> None:
    body = await insights.query("carol", QUERY)
    attention = body["data"]["attention"]
    assert attention["withheldReasons"] == ["CHURN_RISK", "OVERDUE_FOLLOW_UP"]
    assert forbidden_fields(body) == {
        "Opportunity.amount", "Interaction.nextFollowUpOn", "Interaction.occurredAt",
    }  # fmt: skip
    # ties on the number of reasons go by id: customer 4 before customer 5
    assert listed(body) == [
        ("上海一号", ["SILENT", "URGENT_TICKETS"]),
        ("北京四号", ["URGENT_TICKETS"]),
        ("天津五号", ["SILENT"]),
    ]
    assert all(n["followUpDueOn"] is None for n in attention["nodes"])


async def test_finance_reasons_without_tickets_or_interactions(insights: InsightClient) -> None:
    body = await insights.query("dave", QUERY)
    attention = body["data"]["attention"]
    assert attention["withheldReasons"] == ["OVERDUE_FOLLOW_UP"]
    # finance reads no ticket: none is urgent for it, and customer 4 drops out
    assert listed(body) == [("上海一号", ["SILENT", "CHURN_RISK"]), ("天津五号", ["SILENT"])]
    assert attention["totalCount"] == 2


@pytest.mark.parametrize("username", ["erin", "admin"])
async def test_callers_without_customers_get_an_empty_list(
    insights: InsightClient, username: str
) -> None:
    body = await insights.query(username, QUERY)
    assert body["data"]["attention"]["totalCount"] == 0
    assert body["data"]["attention"]["nodes"] == []
    assert "errors" not in body


async def test_partner_learns_nothing_from_hidden_fields(
    insights: InsightClient, partner: str
) -> None:
    body = await insights.query(partner, QUERY)
    attention = body["data"]["attention"]
    # silence rests on dates and levels a partner may not read, churn on amounts
    assert attention["withheldReasons"] == ["SILENT", "CHURN_RISK", "OVERDUE_FOLLOW_UP"]
    assert attention["nodes"] == [] and attention["totalCount"] == 0
    assert "Customer.lastInteractionAt" in forbidden_fields(body)


async def test_a_malformed_cursor_is_bad_input(insights: InsightClient) -> None:
    body = await insights.query("bob", QUERY, {"after": "not-a-cursor"})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
