"""Relay's backward paging (`last`/`before`) and full PageInfo: walking backward gives exactly
the rows walking forward gives, in scope only, with counts and masks unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from tests.graphql.conftest import GraphQLClient, forbidden_fields

FORWARD = """query($first: Int, $after: String, $order: CustomerOrder) {
  customers(first: $first, after: $after, orderBy: $order) {
    totalCount pageInfo { hasNextPage endCursor hasPreviousPage startCursor }
    edges { cursor node { id name phone } } } }"""
BACKWARD = """query($last: Int, $before: String, $order: CustomerOrder) {
  customers(last: $last, before: $before, orderBy: $order) {
    totalCount pageInfo { hasNextPage endCursor hasPreviousPage startCursor }
    edges { cursor node { id name phone } } } }"""
ORDERS = [None, {"field": "UPDATED_AT", "direction": "DESC"}, {"field": "NAME", "direction": "ASC"}]


async def _walk(gql: GraphQLClient, user: str, query: str, size: int, order: Any) -> list[Any]:
    """Every page of the walk, following endCursor forward or startCursor backward."""
    pages: list[dict[str, Any]] = []
    cursor = None
    backward = "last:" in query
    for _ in range(200):
        variables = {"order": order, ("last" if backward else "first"): size}
        variables["before" if backward else "after"] = cursor
        body = await gql.query(user, query, variables)
        assert "data" in body and body["data"], body
        page = body["data"]["customers"]
        pages.append(body)
        info = page["pageInfo"]
        more = info["hasPreviousPage"] if backward else info["hasNextPage"]
        if not more:
            return pages
        cursor = info["startCursor"] if backward else info["endCursor"]
    raise AssertionError("the walk did not end")


def _ids(pages: list[dict[str, Any]]) -> list[str]:
    return [e["node"]["id"] for p in pages for e in p["data"]["customers"]["edges"]]


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("user", ["alice", "bob", "carol"])
async def test_backward_walk_is_the_forward_walk_reversed_and_stays_in_scope(
    gql: GraphQLClient, user: str, order: Any
) -> None:
    everything = (await gql.query(user, FORWARD, {"first": 500, "order": order}))["data"]
    visible = [e["node"]["id"] for e in everything["customers"]["edges"]]
    total = everything["customers"]["totalCount"]
    assert len(visible) == total > 0

    forward = _walk(gql, user, FORWARD, 7, order)
    backward = _walk(gql, user, BACKWARD, 7, order)
    forward_pages, backward_pages = await forward, await backward
    assert _ids(forward_pages) == visible
    # pages come back newest-bound first, each in the connection's own order
    assert [i for p in reversed(backward_pages) for i in _ids([p])] == visible
    for body in backward_pages:
        page = body["data"]["customers"]
        assert page["totalCount"] == total  # counts ignore the page
        edges = page["edges"]
        assert page["pageInfo"]["startCursor"] == edges[0]["cursor"]
        assert page["pageInfo"]["endCursor"] == edges[-1]["cursor"]
    assert backward_pages[0]["data"]["customers"]["pageInfo"]["hasNextPage"] is False
    if len(backward_pages) > 1:
        assert backward_pages[1]["data"]["customers"]["pageInfo"]["hasNextPage"] is True


async def test_masks_and_denials_are_the_same_backward(gql: GraphQLClient) -> None:
    forward = await gql.query("bob", FORWARD, {"first": 500})
    backward = await gql.query("bob", BACKWARD, {"last": 500})
    assert backward["data"]["customers"]["edges"] == forward["data"]["customers"]["edges"]
    assert forbidden_fields(backward) == forbidden_fields(forward) == {"Customer.phone"}
    phones = [e["node"]["phone"] for e in backward["data"]["customers"]["edges"]]
    assert None in phones and any(phones)  # the row-dependent mask holds on this path too


async def test_a_cursor_from_another_callers_rows_reveals_nothing(gql: GraphQLClient) -> None:
    """Frank's cursor used by alice: her page holds only her rows, before that position."""
    franks = (await gql.query("frank", FORWARD, {"first": 3}))["data"]["customers"]
    cursor = franks["edges"][-1]["cursor"]
    mine = (await gql.query("alice", FORWARD, {"first": 500}))["data"]["customers"]
    own = {e["node"]["id"] for e in mine["edges"]}
    assert not own & {e["node"]["id"] for e in franks["edges"]}
    body = await gql.query("alice", BACKWARD, {"last": 500, "before": cursor})
    seen = {e["node"]["id"] for e in body["data"]["customers"]["edges"]}
    assert seen <= own
    assert body["data"]["customers"]["totalCount"] == mine["totalCount"]


async def test_other_root_connections_page_backward(gql: GraphQLClient) -> None:
    for field in ("contacts", "opportunities", "tickets"):
        query = f"""query($last: Int, $before: String) {{ {field}(last: $last, before: $before) {{
          totalCount pageInfo {{ hasPreviousPage startCursor hasNextPage }} nodes {{ id }} }} }}"""
        all_ = await gql.query("alice", f"{{ {field}(first: 500) {{ nodes {{ id }} }} }}")
        ids = [n["id"] for n in all_["data"][field]["nodes"]]
        tail = (await gql.query("alice", query, {"last": 2}))["data"][field]
        assert [n["id"] for n in tail["nodes"]] == ids[-2:]
        assert tail["pageInfo"]["hasPreviousPage"] is (len(ids) > 2)
        before = await gql.query(
            "alice", query, {"last": 2, "before": tail["pageInfo"]["startCursor"]}
        )
        assert [n["id"] for n in before["data"][field]["nodes"]] == ids[-4:-2]
        assert before["data"][field]["pageInfo"]["hasNextPage"] is True


async def test_mixing_directions_and_oversized_pages_are_refused(gql: GraphQLClient) -> None:
    cursor = (await gql.query("alice", FORWARD, {"first": 1}))["data"]["customers"]
    after = cursor["pageInfo"]["endCursor"]
    for query in (
        "{ customers(first: 5, last: 5) { nodes { id } } }",
        f'{{ customers(after: "{after}", before: "{after}") {{ nodes {{ id }} }} }}',
        "{ customers(last: 501) { nodes { id } } }",
        '{ customers(last: 5, before: "bm90IGEgY3Vyc29y") { nodes { id } } }',
    ):
        body = await gql.query("alice", query)
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", (query, body)
        assert not (body.get("data") or {}).get("customers"), query


async def test_forward_pages_keep_their_executor_and_report_a_start_cursor(
    gql: GraphQLClient,
) -> None:
    response = await gql.post(
        "bob", "{ customers(first: 5) { pageInfo { hasNextPage endCursor } nodes { id } } }"
    )
    assert response.headers["x-executor"] == "sql"  # the fast path is untouched
    full = await gql.query("bob", FORWARD, {"first": 5})
    page = full["data"]["customers"]
    assert page["pageInfo"]["startCursor"] == page["edges"][0]["cursor"]
    assert page["pageInfo"]["hasPreviousPage"] is False
    backward = await gql.post("bob", BACKWARD, {"last": 5})
    assert backward.headers["x-executor"] == "general"
