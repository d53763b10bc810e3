"""The query cost budget: a principal's operations spend their cost from one budget per window;
the one that does not fit is refused RATE_LIMITED before it runs, and others keep theirs."""

from __future__ import annotations

from graphql import parse

from api.hardening.limits import measure_operation
from api.root_schema import build_schema
from api.settings import Settings
from tests.security.conftest import running, settings_with

VIEW = "{ customers(first: 40) { nodes { name industry } } }"


async def test_operations_spend_one_budget_then_are_refused_before_running(
    seeded_settings: Settings,
) -> None:
    schema = build_schema()._schema
    cost = measure_operation(
        schema, parse(VIEW), None, {}, default_page_size=50, max_page_size=500, max_fields=500
    ).cost
    assert cost > 40
    settings = settings_with(
        seeded_settings, cost_budget=2 * cost + cost // 2, cost_budget_seconds=3600
    )
    async with running(settings) as client:
        # other spacing each time: a repeat of the same text may be answered by the direct
        # executor, which the endpoint charges through answer_again_within_budget
        for n in range(2):
            body = (await client.post("bob", VIEW + " " * n)).json()
            assert "errors" not in body, body
            assert body["data"]["customers"]["nodes"]
        refused = (await client.post("bob", VIEW + "  ")).json()
        assert refused["data"] is None
        error = refused["errors"][0]["extensions"]
        assert error["code"] == "RATE_LIMITED"
        assert error["cost"] == cost and error["retryAfter"] >= 1
        # a cheaper operation still fits in what is left; another user has a budget of its own
        assert "errors" not in (await client.post("bob", "{ me { user { username } } }")).json()
        assert "errors" not in (await client.post("alice", VIEW)).json()


async def test_no_budget_when_it_is_zero(seeded_settings: Settings) -> None:
    async with running(settings_with(seeded_settings, cost_budget=0)) as client:
        for _ in range(3):
            assert "errors" not in (await client.post("bob", VIEW)).json()
