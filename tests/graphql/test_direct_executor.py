"""The direct executor answers record reads exactly as graphql-core would, masks included."""

from __future__ import annotations

from typing import Any

import pytest

from tests.graphql.conftest import GraphQLClient, switch_off_sql
from tests.graphql.test_statements import NESTED

QUERIES: list[tuple[str, str, dict[str, Any]]] = [
    ("bob", NESTED, {"first": 20}),
    ("alice", NESTED, {"first": 500}),
    ("carol", NESTED, {"first": 30}),
    ("dave", NESTED, {"first": 30}),
    ("erin", NESTED, {"first": 30}),
    (
        "bob",
        """fragment C on Contact { name p: phone ... on Node { id } }
        query View($after: String) { customers(first: 7, after: $after,
          orderBy: {field: NAME, direction: DESC}) {
          __typename totalCount pageInfo { hasNextPage endCursor __typename }
          edges { cursor node { __typename id n1: name n2: name phone level kind tags
            department { name parent { name } }
            contacts(first: 2) { edges { cursor node { ...C } } pageInfo { hasNextPage } }
            ... on Customer { email totalSpend } } } } }""",
        {"after": None},
    ),
    (
        "alice",
        """{ a: customers(first: 3, filter: {level: B}) { nodes { name level } }
            b: contacts(first: 4) {
              totalCount nodes { name phone customer { name owner { username } } } }
            c: opportunities(first: 4, filter: {stage: LEAD}) { nodes { name stage amount
               expectedCloseDate owner { displayName } } }
            d: tickets(first: 4) { nodes { title status priority openedAt resolvedAt satisfaction
               assignee { username } customer { id } } } __typename }""",
        {},
    ),
    ("bob", '{ customers(first: 3, filter: {email: "x@y.z"}) { totalCount } }', {}),
    ("alice", "{ customers(first: 501) { totalCount } }", {}),
    ("alice", '{ customers(after: "garbage") { totalCount } }', {}),
    ("frank", '{ customer(id: "Q3VzdG9tZXI6MQ") { id name phone contacts { totalCount } } }', {}),
]


@pytest.fixture(autouse=True)
def without_sql_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests hold the direct executor to graphql-core; test_sqljson holds SQL to it."""
    switch_off_sql(monkeypatch)


@pytest.mark.parametrize(("username", "query", "variables"), QUERIES)
async def test_direct_and_general_executors_give_the_same_response(
    gql: GraphQLClient,
    monkeypatch: pytest.MonkeyPatch,
    username: str,
    query: str,
    variables: dict[str, Any],
) -> None:
    direct = await gql.post(username, query, variables)
    body = direct.json()
    codes = {e["extensions"]["code"] for e in body.get("errors", [])}
    # refused requests (bad input, forbidden filters) are answered by graphql-core, errors and all
    served = body.get("data") is not None and codes <= {"FORBIDDEN"}
    assert direct.headers["x-executor"] == ("direct" if served else "general")
    monkeypatch.setattr("sqljson.direct.is_direct", lambda *_: False)
    general = await gql.post(username, query, variables)
    assert general.headers["x-executor"] == "general"
    assert direct.json() == general.json()


async def test_the_nested_view_takes_the_direct_path(gql: GraphQLClient) -> None:
    response = await gql.post("bob", NESTED, {"first": 50})
    assert response.headers["x-executor"] == "direct"
    assert response.json()["data"]["customers"]["nodes"]


@pytest.mark.parametrize(
    "query",
    [
        "{ me { user { username } } }",
        "{ customers { nodes { name @include(if: true) } } }",
        '{ node(id: "Q3VzdG9tZXI6MQ") { id } }',
        "{ __schema { queryType { name } } }",
    ],
)
async def test_other_documents_go_to_graphql_core(gql: GraphQLClient, query: str) -> None:
    response = await gql.post("admin", query)
    assert response.headers["x-executor"] == "general"
