"""A read these decisions compiled before runs its statement without Strawberry.

The first request of a query goes through parsing, validation and every guard; a repeat with
the same query, operation name and variables, by the same caller under the same policies, runs
the cached statement straight away. These tests hold the repeat to the first answer, its
audit trail and its caller, and check that anything else still takes the full path.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from tests.graphql import oracle
from tests.graphql.conftest import GraphQLClient, forbidden_fields

VIEW = """query View($first: Int!) { customers(first: $first) { totalCount nodes {
  name phone email contacts(first: 5) { nodes { name phone } } } } }"""


class ExecuteSpy:
    """Counts the requests that reached Strawberry's `Schema.execute`."""

    def __init__(self, app: Starlette, monkeypatch: pytest.MonkeyPatch) -> None:
        schema = app.state.dossier.extras["schema"]
        original = schema.execute
        self.calls = 0

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return await original(*args, **kwargs)

        monkeypatch.setattr(schema, "execute", counted)


async def _post(
    gql: GraphQLClient, username: str, variables: dict[str, Any], name: str | None = "View"
) -> tuple[httpx.Response, str]:
    request_id = uuid.uuid4().hex
    token = await gql.token(username)
    response = await gql.http.post(
        "/graphql",
        json={"query": VIEW, "variables": variables, "operationName": name},
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": request_id},
    )
    assert response.status_code == 200, response.text
    return response, request_id


async def _trail(engine: AsyncEngine, request_id: str) -> list[tuple[Any, ...]]:
    found = await oracle.rows(
        engine,
        "SELECT action, resource_type, resource_ids, fields FROM audit_events "
        "WHERE request_id = :r ORDER BY resource_type NULLS FIRST",
        r=request_id,
    )
    return [tuple(row) for row in found]


async def test_a_repeat_skips_strawberry_and_answers_and_audits_like_the_first(
    gql: GraphQLClient,
    demo_app: Starlette,
    demo_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spy = ExecuteSpy(demo_app, monkeypatch)
    variables = {"first": 7 + uuid.uuid4().int % 5}  # a key no other test compiled
    first, first_id = await _post(gql, "bob", variables)
    assert spy.calls == 1
    again, again_id = await _post(gql, "bob", variables)
    assert spy.calls == 1  # answered from the compiled statement
    assert again.headers["x-executor"] == "sql"
    assert again.json() == first.json()
    assert forbidden_fields(again.json()) == forbidden_fields(first.json())
    assert await _trail(demo_engine, again_id) == await _trail(demo_engine, first_id)
    assert await _trail(demo_engine, again_id)  # the repeat was audited, not just answered


async def test_other_variables_names_or_callers_take_the_full_path(
    gql: GraphQLClient, demo_app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = ExecuteSpy(demo_app, monkeypatch)
    first = 13 + uuid.uuid4().int % 5
    bob, _ = await _post(gql, "bob", {"first": first})
    await _post(gql, "bob", {"first": first + 1})
    assert spy.calls == 2
    await _post(gql, "bob", {"first": first}, name=None)  # same operation, other request key
    assert spy.calls == 3
    carol, _ = await _post(gql, "carol", {"first": first})
    assert spy.calls == 4  # decisions are per caller: bob's statement is never carol's
    carol_again, _ = await _post(gql, "carol", {"first": first})
    assert spy.calls == 4
    assert carol_again.json() == carol.json()
    assert carol.json() != bob.json()  # the two see different customers and fields


async def test_a_policy_change_compiles_the_repeat_afresh(
    gql: GraphQLClient, demo_app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = ExecuteSpy(demo_app, monkeypatch)
    variables = {"first": 19 + uuid.uuid4().int % 5}
    before, _ = await _post(gql, "alice", variables)
    await _post(gql, "alice", variables)
    assert spy.calls == 1
    assert any(n["phone"] for n in before.json()["data"]["customers"]["nodes"])
    deny = {"role": "sales_rep", "department": "*", "resource": "customer.phone",
            "action": "READ", "scope": "ALL", "effect": "DENY"}  # fmt: skip
    add = "mutation($rule: PolicyRuleInput!) { addPolicy(rule: $rule) { role } }"
    remove = "mutation($rule: PolicyRuleInput!) { removePolicy(rule: $rule) }"
    assert "errors" not in await gql.query("admin", add, {"rule": deny})
    try:
        calls = spy.calls
        after, _ = await _post(gql, "alice", variables)
        assert spy.calls == calls + 1  # new decisions, no compiled statement yet
        assert all(n["phone"] is None for n in after.json()["data"]["customers"]["nodes"])
        assert "Customer.phone" in forbidden_fields(after.json())
    finally:
        await gql.query("admin", remove, {"rule": deny})
