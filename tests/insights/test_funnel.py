"""salesFunnel against the hand-worked book of tests/insights/conftest.py."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from schema.node import to_global_id
from tests.insights.conftest import Book, InsightClient, forbidden_fields

QUERY = """query Funnel($filter: InsightFilter) { salesFunnel(filter: $filter) {
    totalCount totalAmount
    stages { stage count amount conversionRate medianDaysInStage } } }"""
STAGES = ("LEAD", "QUALIFIED", "PROPOSAL", "NEGOTIATION", "WON", "LOST")


def stages(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["stage"]: s for s in body["data"]["salesFunnel"]["stages"]}


def check(
    body: dict[str, Any],
    counts: dict[str, int],
    amounts: Mapping[str, int] | None,
    rates: Mapping[str, float],
    medians: Mapping[str, float],
) -> None:
    found = stages(body)
    assert list(found) == list(STAGES)
    for stage in STAGES:
        assert found[stage]["count"] == counts.get(stage, 0), stage
        if amounts is None:
            assert found[stage]["amount"] is None
        else:
            assert Decimal(found[stage]["amount"]) == amounts.get(stage, 0), stage
        assert found[stage]["conversionRate"] == pytest.approx(rates.get(stage)), stage
        assert found[stage]["medianDaysInStage"] == pytest.approx(medians.get(stage)), stage
    funnel = body["data"]["salesFunnel"]
    assert funnel["totalCount"] == sum(counts.values())
    if amounts is None:
        assert funnel["totalAmount"] is None
    else:
        assert Decimal(funnel["totalAmount"]) == sum(amounts.values())


async def test_sales_rep_funnel_covers_her_own_opportunities(insights: InsightClient) -> None:
    body = await insights.query("alice", QUERY)
    assert "errors" not in body
    # opportunities 1-4: archived customer 6 and archived opportunity 9 are left out
    check(
        body,
        counts={"WON": 2, "LOST": 1, "LEAD": 1},
        amounts={"WON": 120000, "LOST": 50000, "LEAD": 30000},
        rates={"LEAD": 3 / 4, "QUALIFIED": 2 / 3, "PROPOSAL": 1.0, "NEGOTIATION": 1.0},
        # stays: LEAD 10,10,20 · QUALIFIED 10,5,10 · PROPOSAL 10,5 · NEGOTIATION 120,15
        medians={"LEAD": 10, "QUALIFIED": 10, "PROPOSAL": 7.5, "NEGOTIATION": 67.5},
    )


SALES_COUNTS = {"LEAD": 1, "QUALIFIED": 1, "PROPOSAL": 1, "WON": 3, "LOST": 1}
SALES_AMOUNTS = {"LEAD": 30000, "QUALIFIED": 40000, "PROPOSAL": 500000, "WON": 128000,
                 "LOST": 50000}  # fmt: skip
# stays: LEAD 10,10,20,5,1,10 · QUALIFIED 10,5,10,2,10 · PROPOSAL 10,5,10 · NEGOTIATION 120,15,10
SALES_MEDIANS = {"LEAD": 10, "QUALIFIED": 10, "PROPOSAL": 10, "NEGOTIATION": 15}


async def test_sales_manager_funnel_covers_the_sales_subtree(insights: InsightClient) -> None:
    body = await insights.query("bob", QUERY)
    assert "errors" not in body
    check(
        body,
        counts=SALES_COUNTS,
        amounts=SALES_AMOUNTS,
        rates={"LEAD": 6 / 7, "QUALIFIED": 4 / 6, "PROPOSAL": 3 / 4, "NEGOTIATION": 1.0},
        medians=SALES_MEDIANS,
    )


async def test_finance_funnel_covers_every_customer(insights: InsightClient) -> None:
    body = await insights.query("dave", QUERY)
    assert "errors" not in body
    # bob's figures plus opportunity 10 of customer 7, outside Sales
    check(
        body,
        counts={**SALES_COUNTS, "LEAD": 2},
        amounts={**SALES_AMOUNTS, "LEAD": 31000},
        rates={"LEAD": 6 / 8, "QUALIFIED": 4 / 6, "PROPOSAL": 3 / 4, "NEGOTIATION": 1.0},
        medians=SALES_MEDIANS,
    )


@pytest.mark.parametrize("username", ["carol", "erin", "admin"])
async def test_callers_without_opportunities_get_zeros_and_no_amounts(
    insights: InsightClient, username: str
) -> None:
    body = await insights.query(username, QUERY)
    check(body, counts={}, amounts=None, rates={}, medians={})
    assert forbidden_fields(body) == {"Opportunity.amount"}


async def test_partner_funnel_is_empty_and_amounts_forbidden(
    insights: InsightClient, partner: str
) -> None:
    body = await insights.query(partner, QUERY)
    check(body, counts={}, amounts=None, rates={}, medians={})
    assert forbidden_fields(body) == {"Opportunity.amount"}


async def test_row_dependent_amounts_count_only_readable_rows(insights: InsightClient) -> None:
    # grace sees the Sales subtree's opportunities, amounts only in 销售部 (opportunity 6)
    body = await insights.query("grace", QUERY)
    found = stages(body)
    assert [found[s]["count"] for s in STAGES] == [1, 1, 1, 0, 3, 1]
    assert Decimal(found["PROPOSAL"]["amount"]) == 500000
    assert all(Decimal(found[s]["amount"]) == 0 for s in STAGES if s != "PROPOSAL")
    assert Decimal(body["data"]["salesFunnel"]["totalAmount"]) == 500000
    assert forbidden_fields(body) == {"Opportunity.amount"}


async def test_filter_by_department_takes_its_subtree(insights: InsightClient, book: Book) -> None:
    north = to_global_id("Department", book.departments["华北销售"])
    body = await insights.query("bob", QUERY, {"filter": {"departmentId": north}})
    check(
        body,
        counts={"QUALIFIED": 1, "WON": 1},
        amounts={"QUALIFIED": 40000, "WON": 8000},
        rates={"LEAD": 1.0, "QUALIFIED": 1 / 2, "PROPOSAL": 1.0, "NEGOTIATION": 1.0},
        medians={"LEAD": 7.5, "QUALIFIED": 10, "PROPOSAL": 10, "NEGOTIATION": 10},
    )
    sales = to_global_id("Department", book.departments["销售部"])
    body = await insights.query("bob", QUERY, {"filter": {"departmentId": sales}})
    assert body["data"]["salesFunnel"]["totalCount"] == 7


async def test_filter_by_owner_and_creation_window(insights: InsightClient, book: Book) -> None:
    alice = to_global_id("User", book.users["alice"])
    body = await insights.query("bob", QUERY, {"filter": {"ownerId": alice}})
    assert body["data"]["salesFunnel"]["totalCount"] == 4
    assert Decimal(body["data"]["salesFunnel"]["totalAmount"]) == 200000
    # created in the last 70 days: opportunities 2, 4, 5 and 6
    from tests.insights.conftest import ago

    window = {"from": ago(70).isoformat(), "to": ago(0).isoformat()}
    body = await insights.query("bob", QUERY, {"filter": window})
    found = stages(body)
    assert {s: found[s]["count"] for s in STAGES if found[s]["count"]} == {
        "WON": 1, "LEAD": 1, "QUALIFIED": 1, "PROPOSAL": 1,
    }  # fmt: skip
    assert Decimal(body["data"]["salesFunnel"]["totalAmount"]) == 590000


async def test_filtering_by_a_hidden_field_is_refused(insights: InsightClient, book: Book) -> None:
    alice = to_global_id("User", book.users["alice"])
    body = await insights.query("carol", QUERY, {"filter": {"ownerId": alice}})
    assert body["data"] is None
    assert forbidden_fields(body) == {"Opportunity.owner"}


async def test_funnel_is_audited_as_a_read_of_opportunities(
    insights: InsightClient, insights_engine: AsyncEngine
) -> None:
    await insights.query("alice", QUERY)
    async with insights_engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT resource_ids, fields FROM audit_events WHERE actor = 'alice'"
                    " AND action = 'READ' AND resource_type = 'opportunity'"
                    " AND 'insight:salesFunnel' = ANY(fields) ORDER BY seq DESC LIMIT 1"
                )
            )
        ).one()
    assert row.resource_ids == []
    assert set(row.fields) == {"insight:salesFunnel", "stage", "amount"}
