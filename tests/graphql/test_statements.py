"""No N+1: the statements a nested view sends do not grow with the page size."""

from __future__ import annotations

from typing import Any

import pytest

from policy.decisions import AccessDecisions
from tests.graphql.conftest import GraphQLClient

NESTED = """query($first: Int!) { customers(first: $first) { totalCount nodes {
  id name kind industry region level phone email updatedAt owner { username department { name } }
  contacts { totalCount nodes { name title phone customer { name } } }
  opportunities { nodes { name stage amount owner { username } } }
  tickets { nodes { title status priority assignee { username } } } } } }"""


async def statements_for(gql: GraphQLClient, username: str, first: int) -> tuple[int, int]:
    response = await gql.post(username, NESTED, {"first": first})
    assert response.status_code == 200
    rows = len(response.json()["data"]["customers"]["nodes"])
    return int(response.headers["x-sql-statements"]), rows


async def test_statement_count_is_flat_in_page_size(gql: GraphQLClient) -> None:
    for username in ("bob", "alice", "carol"):
        small, small_rows = await statements_for(gql, username, 2)
        large, large_rows = await statements_for(gql, username, 500)
        assert large_rows > small_rows
        assert small == large, (username, small, large)
        assert large <= 15


async def test_policy_decisions_per_request_do_not_grow_with_page_size(
    gql: GraphQLClient, demo_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decisions are made per (type, field), once per principal and policy version."""
    calls = {"rows": 0, "field": 0}
    compute_rows, compute_field = AccessDecisions._compute_rows, AccessDecisions._compute_field

    def counting_rows(self: AccessDecisions, *args: Any) -> Any:
        calls["rows"] += 1
        return compute_rows(self, *args)

    def counting_field(self: AccessDecisions, *args: Any) -> Any:
        calls["field"] += 1
        return compute_field(self, *args)

    monkeypatch.setattr(AccessDecisions, "_compute_rows", counting_rows)
    monkeypatch.setattr(AccessDecisions, "_compute_field", counting_field)
    store = demo_app.state.dossier.extras["policy_store"]
    counts = []
    for first in (2, 500):
        await store.reload()  # a new policy version: decisions are made afresh
        calls.update(rows=0, field=0)
        await statements_for(gql, "bob", first)
        counts.append(dict(calls))
        await statements_for(gql, "bob", first)  # the same principal and version again
        assert calls == counts[-1], "a repeated request made new decisions"
    assert counts[0] == counts[1]
    assert 0 < counts[1]["field"] <= 40


WORKFLOW = """query($first: Int!) { customers(first: $first) { nodes { id name
  contracts(first: 3) { totalCount nodes { title amount endsOn owner { username }
    payments(first: 4) { nodes { amount dueOn contract { title } } } } }
  tasks(first: 5) { totalCount nodes { title kind assignee { username } } }
  timeline(first: 5) { totalCount nodes { kind at node { id ... on Payment { amount } } } }
  opportunities(first: 3) { nodes { stageHistory { from to at } } } } } }"""


async def test_workflow_children_are_flat_in_page_size_and_answered_by_the_general_path(
    gql: GraphQLClient,
) -> None:
    """Contracts, payments, tasks, timeline and stage history: one statement per level, and
    a query selecting them is not taken by the direct or SQL-JSON executors (they do not know
    the tasks' assignee scope nor payments under a contract)."""
    for username in ("bob", "alice", "dave", "carol"):
        counts = []
        await gql.post(username, WORKFLOW, {"first": 1})  # the login's own checks, once
        for first in (20, 60):  # both pages hold every kind of timeline item
            response = await gql.post(username, WORKFLOW, {"first": first})
            body = response.json()
            assert response.status_code == 200 and body.get("data"), body
            assert response.headers["x-executor"] == "general"
            counts.append(int(response.headers["x-sql-statements"]))
        assert counts[0] == counts[1], (username, counts)
        assert counts[1] <= 20, (username, counts)
    # the nested view without the new fields keeps its fast executor
    response = await gql.post("bob", NESTED, {"first": 5})
    assert response.headers["x-executor"] in ("sql", "direct")
