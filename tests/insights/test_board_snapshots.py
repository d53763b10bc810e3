"""Service board, segments, leaderboard and attention from their snapshots: the live figures
(resolution percentiles within 2.5 %), the same FORBIDDEN errors, and the snapshot's age."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from insights.snapshots import SnapshotRefresher, discard_snapshots
from schema.node import to_global_id
from tests.insights.conftest import Book, InsightClient, ago, forbidden_fields

BOARD = """query Board($filter: InsightFilter) { serviceBoard(filter: $filter) {
    totalCount byStatus { status count } medianHoursToResolve p90HoursToResolve
    satisfactionAverage backlog { open inProgress assignee { username } } pastSla
    pastSlaByPriority { priority count slaHours } computedAt isSnapshot } }"""
SEGMENTS = """query Segments($filter: InsightFilter) { customerSegments(filter: $filter) {
    totalCount segments { segment count } levels { level count } regions { name count }
    industries { name count } computedAt isSnapshot } }"""
LEADERBOARD = """{ leaderboard(period: LAST_365_DAYS) { entries { owner { username }
    newCustomers wonCount wonAmount interactionsLogged } computedAt isSnapshot } }"""
ATTENTION = """{ attention(first: 3) { totalCount withheldReasons isSnapshot computedAt
    pageInfo { hasNextPage endCursor }
    nodes { reasons daysSilent followUpDueOn openUrgentTickets customer { name } } } }"""
QUERIES = {
    "serviceBoard": BOARD,
    "customerSegments": SEGMENTS,
    "leaderboard": LEADERBOARD,
    "attention": ATTENTION,
}
APPROXIMATE = ("medianHoursToResolve", "p90HoursToResolve")
USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace"]


async def _refreshed(insights_engine: AsyncEngine) -> None:
    assert await SnapshotRefresher(insights_engine, 60).refresh_once()


async def _discard(insights_engine: AsyncEngine) -> None:
    async with insights_engine.begin() as connection:
        await discard_snapshots(connection)


def _exact(figures: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in figures.items()
        if k not in ("computedAt", "isSnapshot", "from", "to", *APPROXIMATE)
    }


async def _both(
    insights: InsightClient,
    insights_engine: AsyncEngine,
    username: str,
    query: str,
    variables: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    live = await insights.query(username, query, variables)
    await _refreshed(insights_engine)
    try:
        cached = await insights.query(username, query, variables)
    finally:
        await _discard(insights_engine)
    return live, cached


@pytest.mark.parametrize("name", list(QUERIES))
@pytest.mark.parametrize("username", USERS)
async def test_snapshot_agrees_with_live_figures_within_rights(
    insights: InsightClient, insights_engine: AsyncEngine, book: Book, name: str, username: str
) -> None:
    live, cached = await _both(insights, insights_engine, username, QUERIES[name])
    assert forbidden_fields(cached) == forbidden_fields(live)
    live_figures, figures = live["data"][name], cached["data"][name]
    assert live_figures["isSnapshot"] is False
    assert _exact(figures) == _exact(live_figures)
    for figure in APPROXIMATE:
        if figure not in live_figures:
            continue
        if live_figures[figure] is None:
            assert figures[figure] is None
        else:
            assert figures[figure] == pytest.approx(live_figures[figure], rel=0.025)


@pytest.mark.parametrize("name", list(QUERIES))
async def test_snapshot_says_when_it_was_taken(
    insights: InsightClient, insights_engine: AsyncEngine, book: Book, name: str
) -> None:
    username = "carol" if name == "serviceBoard" else "dave"
    await _refreshed(insights_engine)
    try:
        figures = (await insights.query(username, QUERIES[name]))["data"][name]
    finally:
        await _discard(insights_engine)
    assert figures["isSnapshot"] is True
    assert ago(hours=1).isoformat() < figures["computedAt"]


async def test_leaderboard_period_ends_at_the_snapshot(
    insights: InsightClient, insights_engine: AsyncEngine, book: Book
) -> None:
    query = "{ leaderboard(period: LAST_7_DAYS) { from to computedAt isSnapshot } }"
    await _refreshed(insights_engine)
    try:
        board = (await insights.query("bob", query))["data"]["leaderboard"]
    finally:
        await _discard(insights_engine)
    assert board["isSnapshot"] is True
    assert board["to"] == board["computedAt"]


@pytest.mark.parametrize("name", ["serviceBoard", "customerSegments"])
async def test_snapshot_applies_department_and_owner_filters(
    insights: InsightClient, insights_engine: AsyncEngine, book: Book, name: str
) -> None:
    north = to_global_id("Department", book.departments["华北销售"])
    alice = to_global_id("User", book.users["alice"])
    everyone = "carol" if name == "serviceBoard" else "dave"  # all rows of the resource
    for username, bounds in (("bob", {"departmentId": north}), ("bob", {"ownerId": alice}),
                             (everyone, {"ownerId": alice})):  # fmt: skip
        live, cached = await _both(
            insights, insights_engine, username, QUERIES[name], {"filter": bounds}
        )
        assert forbidden_fields(cached) == forbidden_fields(live)
        assert cached["data"][name]["isSnapshot"] is True
        assert _exact(cached["data"][name]) == _exact(live["data"][name])


@pytest.mark.parametrize("name", ["serviceBoard", "customerSegments"])
async def test_a_time_window_is_answered_live(
    insights: InsightClient, insights_engine: AsyncEngine, book: Book, name: str
) -> None:
    window = {"filter": {"from": ago(70).isoformat(), "to": ago(0).isoformat()}}
    username = "carol" if name == "serviceBoard" else "dave"
    await _refreshed(insights_engine)
    try:
        body = await insights.query(username, QUERIES[name], window)
    finally:
        await _discard(insights_engine)
    assert body["data"][name]["isSnapshot"] is False


async def test_partner_is_answered_live(
    insights: InsightClient, insights_engine: AsyncEngine, partner: str
) -> None:
    await _refreshed(insights_engine)
    try:
        body = await insights.query(partner, SEGMENTS)
    finally:
        await _discard(insights_engine)
    figures = body["data"]["customerSegments"]
    assert figures["isSnapshot"] is False
    assert figures["totalCount"] == 2  # the shared customers 1 and 3
