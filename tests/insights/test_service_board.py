"""serviceBoard against the hand-worked book of tests/insights/conftest.py."""

from __future__ import annotations

from typing import Any

import pytest

from tests.insights.conftest import Book, InsightClient, forbidden_fields

QUERY = """{ serviceBoard {
    totalCount byStatus { status count }
    medianHoursToResolve p90HoursToResolve satisfactionAverage
    backlog { open inProgress assignee { username } }
    pastSla pastSlaByPriority { priority count slaHours } } }"""


def board(body: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = body["data"]["serviceBoard"]
    return found


def statuses(found: dict[str, Any]) -> dict[str, int]:
    return {s["status"]: s["count"] for s in found["byStatus"]}


def backlog(found: dict[str, Any]) -> list[tuple[str | None, int, int]]:
    return [
        ((b["assignee"] or {}).get("username"), b["open"], b["inProgress"])
        for b in found["backlog"]
    ]


def past_sla(found: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {p["priority"]: (p["count"], p["slaHours"]) for p in found["pastSlaByPriority"]}


async def test_sales_rep_board_covers_tickets_of_her_customers(insights: InsightClient) -> None:
    body = await insights.query("alice", QUERY)
    assert "errors" not in body
    found = board(body)
    # tickets 1-5
    assert found["totalCount"] == 5
    assert statuses(found) == {"OPEN": 2, "IN_PROGRESS": 1, "RESOLVED": 1, "CLOSED": 1}
    assert found["medianHoursToResolve"] == pytest.approx(15)  # 10 h and 20 h
    assert found["p90HoursToResolve"] == pytest.approx(19)  # 10 + 0.9 × 10
    assert found["satisfactionAverage"] == pytest.approx(4)  # 5 and 3
    assert backlog(found) == [("carol", 1, 1), (None, 1, 0)]
    # ticket 3 (URGENT, 24 h > 4 h) and ticket 5 (LOW, 192 h > 168 h)
    assert found["pastSla"] == 2
    assert past_sla(found) == {"LOW": (1, 168), "NORMAL": (0, 72), "HIGH": (0, 24),
                               "URGENT": (1, 4)}  # fmt: skip


async def test_service_agent_board_covers_every_live_ticket(insights: InsightClient) -> None:
    body = await insights.query("carol", QUERY)
    assert "errors" not in body
    found = board(body)
    # tickets 1-9; ticket 10 hangs off the archived customer 6
    assert found["totalCount"] == 9
    assert statuses(found) == {"OPEN": 4, "IN_PROGRESS": 1, "RESOLVED": 2, "CLOSED": 2}
    # resolution hours 2, 10, 20, 40
    assert found["medianHoursToResolve"] == pytest.approx(15)
    assert found["p90HoursToResolve"] == pytest.approx(34)  # 20 + 0.7 × 20
    assert found["satisfactionAverage"] == pytest.approx(4)  # 5, 3, 4
    assert backlog(found) == [("carol", 2, 1), (None, 2, 0)]
    # tickets 3, 5 and 9 (HIGH, 48 h > 24 h); ticket 7 is one hour old
    assert found["pastSla"] == 3
    assert past_sla(found)["HIGH"] == (1, 24)
    assert past_sla(found)["URGENT"] == (1, 4)


async def test_sales_manager_board_covers_the_sales_subtree(insights: InsightClient) -> None:
    found = board(await insights.query("bob", QUERY))
    assert found["totalCount"] == 8  # carol's nine without ticket 9 of customer 7
    assert statuses(found) == {"OPEN": 3, "IN_PROGRESS": 1, "RESOLVED": 2, "CLOSED": 2}
    assert found["medianHoursToResolve"] == pytest.approx(15)
    assert found["p90HoursToResolve"] == pytest.approx(34)
    assert backlog(found) == [("carol", 2, 1), (None, 1, 0)]
    assert found["pastSla"] == 2


@pytest.mark.parametrize("username", ["dave", "erin"])
async def test_callers_without_tickets_get_zeros_and_no_ticket_values(
    insights: InsightClient, username: str
) -> None:
    body = await insights.query(username, QUERY)
    found = board(body)
    assert found["totalCount"] == 0
    assert set(statuses(found).values()) == {0}
    assert found["backlog"] == []
    for figure in ("medianHoursToResolve", "p90HoursToResolve", "satisfactionAverage",
                   "pastSla", "pastSlaByPriority"):  # fmt: skip
        assert found[figure] is None, figure
    assert forbidden_fields(body) == {
        "Ticket.openedAt", "Ticket.resolvedAt", "Ticket.satisfaction",
    }  # fmt: skip


async def test_filter_by_owner_of_the_customer(insights: InsightClient, book: Book) -> None:
    from schema.node import to_global_id

    frank = to_global_id("User", book.users["frank"])
    found = board(await insights.query("carol", QUERY.replace(
        "serviceBoard {", f'serviceBoard(filter: {{ownerId: "{frank}"}}) {{')))  # fmt: skip
    # tickets 6 and 8 of customers 3 and 5
    assert found["totalCount"] == 2
    assert found["medianHoursToResolve"] == pytest.approx(21)  # 2 h and 40 h
