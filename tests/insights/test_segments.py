"""customerSegments against the hand-worked book of tests/insights/conftest.py.

RFM of the book: customer 1 last won 25 days ago (R 5), two wins (F 3), 120 000 (M 3): LOYAL;
customer 5 won once 360 days ago (R 2, F 2) for 8 000 (M 1): HIBERNATING; the rest never won.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.insights.conftest import InsightClient, forbidden_fields

QUERY = """{ customerSegments { totalCount segments { segment count }
    levels { level count } regions { name count } industries { name count } } }"""
SEGMENTS = ("CHAMPIONS", "LOYAL", "PROMISING", "NEEDS_ATTENTION", "AT_RISK", "HIBERNATING",
            "NO_PURCHASE")  # fmt: skip


def found(body: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = body["data"]["customerSegments"]
    return data


def segments(data: dict[str, Any]) -> dict[str, int]:
    assert [s["segment"] for s in data["segments"]] == list(SEGMENTS)
    return {s["segment"]: s["count"] for s in data["segments"] if s["count"]}


def named(entries: list[dict[str, Any]]) -> list[tuple[str | None, int]]:
    return [(e["name"], e["count"]) for e in entries]


async def test_sales_rep_segments_her_own_customers(insights: InsightClient) -> None:
    body = await insights.query("alice", QUERY)
    assert "errors" not in body
    data = found(body)
    assert data["totalCount"] == 2
    assert segments(data) == {"LOYAL": 1, "NO_PURCHASE": 1}
    assert data["levels"] == [{"level": "A", "count": 1}, {"level": "B", "count": 1},
                              {"level": "C", "count": 0}]  # fmt: skip
    assert named(data["regions"]) == [("上海", 1), ("浙江", 1)]
    assert named(data["industries"]) == [("信息技术", 1), ("制造业", 1)]


async def test_sales_manager_segments_the_sales_subtree(insights: InsightClient) -> None:
    data = found(await insights.query("bob", QUERY))
    assert data["totalCount"] == 5
    assert segments(data) == {"LOYAL": 1, "HIBERNATING": 1, "NO_PURCHASE": 3}
    assert [lv["count"] for lv in data["levels"]] == [2, 1, 2]
    assert named(data["regions"]) == [("北京", 2), ("上海", 1), ("天津", 1), ("浙江", 1)]
    assert named(data["industries"]) == [("制造业", 2), ("信息技术", 1), ("金融业", 1),
                                         (None, 1)]  # fmt: skip


async def test_finance_segments_every_customer(insights: InsightClient) -> None:
    data = found(await insights.query("dave", QUERY))
    assert data["totalCount"] == 6
    assert segments(data) == {"LOYAL": 1, "HIBERNATING": 1, "NO_PURCHASE": 4}
    assert [lv["count"] for lv in data["levels"]] == [2, 1, 3]
    assert ("广东", 1) in named(data["regions"])
    assert ("教育", 1) in named(data["industries"])


async def test_service_agent_gets_distributions_but_no_rfm(insights: InsightClient) -> None:
    body = await insights.query("carol", QUERY)
    data = found(body)
    assert data["totalCount"] == 6
    assert data["segments"] is None
    assert [lv["count"] for lv in data["levels"]] == [2, 1, 3]
    assert forbidden_fields(body) == {"Opportunity.amount"}


@pytest.mark.parametrize("username", ["erin", "admin"])
async def test_callers_without_customers_get_zeros(insights: InsightClient, username: str) -> None:
    body = await insights.query(username, QUERY)
    data = found(body)
    assert data["totalCount"] == 0
    assert [lv["count"] for lv in data["levels"]] == [0, 0, 0]
    assert data["regions"] == [] and data["industries"] == []
    assert data["segments"] is None
    assert forbidden_fields(body) == {"Opportunity.amount"}


async def test_partner_sees_only_industries_of_shared_customers(
    insights: InsightClient, partner: str
) -> None:
    body = await insights.query(partner, QUERY)
    data = found(body)
    # customers 1 and 3 are shared; a partner reads their name and industry only
    assert data["totalCount"] == 2
    assert named(data["industries"]) == [("制造业", 2)]
    assert data["levels"] is None and data["regions"] is None and data["segments"] is None
    assert forbidden_fields(body) == {"Customer.level", "Customer.region", "Opportunity.amount"}


async def test_partner_cannot_filter_by_department(insights: InsightClient, partner: str) -> None:
    from schema.node import to_global_id

    query = QUERY.replace(
        "customerSegments {",
        f'customerSegments(filter: {{departmentId: "{to_global_id("Department", 1)}"}}) {{',
    )
    body = await insights.query(partner, query)
    assert body["data"] is None
    assert forbidden_fields(body) == {"Customer.department"}
