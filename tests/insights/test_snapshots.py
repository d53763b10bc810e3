"""The funnel's snapshot: the live figures (medians within 2.5 %), the same rights, its age."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from insights.snapshots import SnapshotRefresher, discard_snapshots
from schema.node import to_global_id
from tests.insights.conftest import Book, InsightClient, ago, forbidden_fields

QUERY = """query Funnel($filter: InsightFilter) { salesFunnel(filter: $filter) {
    totalCount totalAmount computedAt isSnapshot
    stages { stage count amount conversionRate medianDaysInStage } } }"""


@pytest.fixture
async def snapshot(insights_engine: AsyncEngine, book: Book) -> AsyncIterator[None]:
    """Snapshots refreshed for one test, then emptied so the other tests see live figures."""
    assert await SnapshotRefresher(insights_engine, 60).refresh_once()
    try:
        yield
    finally:
        async with insights_engine.begin() as connection:
            await discard_snapshots(connection)


def without_medians(body: dict[str, Any]) -> tuple[Any, ...]:
    funnel = body["data"]["salesFunnel"]
    stages = [{k: v for k, v in s.items() if k != "medianDaysInStage"} for s in funnel["stages"]]
    return funnel["totalCount"], funnel["totalAmount"], stages


@pytest.mark.parametrize("username", ["alice", "bob", "dave", "frank", "grace", "carol"])
async def test_snapshot_agrees_with_live_figures_within_rights(
    insights: InsightClient, insights_engine: AsyncEngine, book: Book, username: str
) -> None:
    live = await insights.query(username, QUERY)
    assert live["data"]["salesFunnel"]["isSnapshot"] is False
    assert await SnapshotRefresher(insights_engine, 60).refresh_once()
    try:
        cached = await insights.query(username, QUERY)
    finally:
        async with insights_engine.begin() as connection:
            await discard_snapshots(connection)
    funnel = cached["data"]["salesFunnel"]
    assert funnel["isSnapshot"] is (username != "carol")  # carol has no rows: nothing to read
    assert without_medians(cached) == without_medians(live)
    assert forbidden_fields(cached) == forbidden_fields(live)
    for cached_stage, live_stage in zip(
        funnel["stages"], live["data"]["salesFunnel"]["stages"], strict=True
    ):
        expected = live_stage["medianDaysInStage"]
        if expected is None:
            assert cached_stage["medianDaysInStage"] is None
        else:
            assert cached_stage["medianDaysInStage"] == pytest.approx(expected, rel=0.025)


async def test_snapshot_says_when_it_was_taken(insights: InsightClient, snapshot: None) -> None:
    funnel = (await insights.query("bob", QUERY))["data"]["salesFunnel"]
    assert funnel["isSnapshot"] is True
    assert datetime.fromisoformat(funnel["computedAt"]) > ago(hours=1)


async def test_snapshot_applies_department_and_owner_filters(
    insights: InsightClient, book: Book, snapshot: None
) -> None:
    north = to_global_id("Department", book.departments["华北销售"])
    body = await insights.query("bob", QUERY, {"filter": {"departmentId": north}})
    assert body["data"]["salesFunnel"]["isSnapshot"] is True
    assert body["data"]["salesFunnel"]["totalCount"] == 2
    alice = to_global_id("User", book.users["alice"])
    body = await insights.query("bob", QUERY, {"filter": {"ownerId": alice}})
    assert body["data"]["salesFunnel"]["totalCount"] == 4


async def test_a_time_window_is_answered_live(insights: InsightClient, snapshot: None) -> None:
    window = {"from": ago(70).isoformat(), "to": ago(0).isoformat()}
    body = await insights.query("bob", QUERY, {"filter": window})
    assert body["data"]["salesFunnel"]["isSnapshot"] is False
    assert body["data"]["salesFunnel"]["totalCount"] == 4


async def test_partner_is_answered_live(
    insights: InsightClient, partner: str, snapshot: None
) -> None:
    body = await insights.query(partner, QUERY)
    assert body["data"]["salesFunnel"]["totalCount"] == 0
    assert forbidden_fields(body) == {"Opportunity.amount"}


async def test_a_process_that_starts_after_a_refresh_waits_for_the_interval(
    insights_engine: AsyncEngine, book: Book
) -> None:
    """Restarts and new workers share the snapshots instead of each refreshing them again."""
    refresher = SnapshotRefresher(insights_engine, 60)
    async with insights_engine.begin() as connection:
        await discard_snapshots(connection)
    assert await refresher.due_in() == 0  # never taken: due now
    assert await refresher.refresh_once()
    try:
        assert 55 < await refresher.due_in() <= 60
        assert await SnapshotRefresher(insights_engine, 0.001).due_in() == 0  # older than that
    finally:
        async with insights_engine.begin() as connection:
            await discard_snapshots(connection)
    assert await refresher.due_in() == 0
