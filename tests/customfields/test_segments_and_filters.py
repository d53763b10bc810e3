"""`Customer.segment` and the CustomerFilter conditions people act on."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from schema.node import to_global_id
from tests.graphql.conftest import GraphQLClient, error_codes, forbidden_fields

PAGE = """query($f: CustomerFilter) { customers(first: 500, filter: $f) {
  totalCount nodes { id segment level tags totalSpend } } }"""


async def test_segment_of_each_customer_agrees_with_the_segment_counts(cf: GraphQLClient) -> None:
    body = await cf.query("bob", PAGE)
    assert "errors" not in body or "Customer.segment" not in forbidden_fields(body)
    nodes = body["data"]["customers"]["nodes"]
    by_segment = Counter(n["segment"] for n in nodes)
    assert None not in by_segment and len(by_segment) > 1, by_segment
    insight = await cf.query("bob", "{ customerSegments { segments { segment count } } }")
    counts = {s["segment"]: s["count"] for s in insight["data"]["customerSegments"]["segments"]}
    assert {k: v for k, v in counts.items() if v} == dict(by_segment)
    for segment, count in by_segment.items():
        listed = await cf.query("bob", PAGE, {"f": {"segment": segment}})
        found = listed["data"]["customers"]
        assert found["totalCount"] == count
        assert {n["segment"] for n in found["nodes"]} == {segment}


async def test_manager_lists_at_risk_level_a_customers_of_east_sales(
    cf: GraphQLClient, cf_engine: AsyncEngine
) -> None:
    async with cf_engine.connect() as connection:
        east = (
            await connection.execute(text("SELECT id FROM departments WHERE name = '华东销售'"))
        ).scalar_one()
    everything = (await cf.query("bob", PAGE))["data"]["customers"]["nodes"]
    segment = Counter(n["segment"] for n in everything).most_common(1)[0][0]
    query = """query($f: CustomerFilter) { customers(first: 500, filter: $f) {
      nodes { id segment level department { id } } } }"""
    wanted = {"segment": segment, "level": "A", "departmentId": to_global_id("Department", east)}
    nodes = (await cf.query("bob", query, {"f": wanted}))["data"]["customers"]["nodes"]
    assert all(n["segment"] == segment and n["level"] == "A" for n in nodes)
    assert all(n["department"]["id"] == to_global_id("Department", east) for n in nodes)


async def test_segment_is_withheld_where_the_deals_behind_it_are(cf: GraphQLClient) -> None:
    # carol (service) may not read opportunities: a segment would tell what the deals hold
    body = await cf.query("carol", "{ customers(first: 5) { nodes { name segment } } }")
    assert all(n["segment"] is None for n in body["data"]["customers"]["nodes"])
    assert forbidden_fields(body) == {"Customer.segment"}
    refused = await cf.query("carol", PAGE, {"f": {"segment": "CHAMPIONS"}})
    assert forbidden_fields(refused) == {"Customer.segment"}


async def test_tags_spend_and_last_interaction_filters(cf: GraphQLClient) -> None:
    nodes = (await cf.query("dave", PAGE))["data"]["customers"]["nodes"]
    tags = Counter(t for n in nodes for t in n["tags"] or [])
    (first, _), (second, _) = tags.most_common(2)
    any_of = (await cf.query("dave", PAGE, {"f": {"tagsAny": [first, second]}}))["data"]
    all_of = (await cf.query("dave", PAGE, {"f": {"tagsAll": [first, second]}}))["data"]
    assert {n["id"] for n in any_of["customers"]["nodes"]} == {
        n["id"] for n in nodes if {first, second} & set(n["tags"] or [])}  # fmt: skip
    assert {n["id"] for n in all_of["customers"]["nodes"]} == {
        n["id"] for n in nodes if {first, second} <= set(n["tags"] or [])}  # fmt: skip
    spends = sorted(float(n["totalSpend"]) for n in nodes)
    low, high = spends[len(spends) // 4], spends[3 * len(spends) // 4]
    ranged = await cf.query("dave", PAGE, {"f": {"totalSpendGte": str(low),
                                                 "totalSpendLte": str(high)}})  # fmt: skip
    got = {n["id"] for n in ranged["data"]["customers"]["nodes"]}
    assert got == {n["id"] for n in nodes if low <= float(n["totalSpend"]) <= high}
    # alice may not read totalSpend: filtering by it is refused, not silently applied
    refused = await cf.query("alice", PAGE, {"f": {"totalSpendGte": "1"}})
    assert error_codes(refused) == ["FORBIDDEN"]
    assert forbidden_fields(refused) == {"Customer.totalSpend"}
    before = await cf.query(
        "alice",
        """{ customers(first: 500,
      filter: {lastInteractionBefore: "2000-01-01T00:00:00Z"}) { totalCount } }""",
    )
    assert before["data"]["customers"]["totalCount"] == 0
