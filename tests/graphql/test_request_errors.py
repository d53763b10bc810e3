"""Release blockers of issue 26: writes that must commit, request errors, strict global ids."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from schema.node import to_global_id
from tests.graphql import oracle
from tests.graphql.conftest import GraphQLClient, error_codes

CUSTOMERS = "{ customers(first: 1) { totalCount } }"


async def _raw(gql: GraphQLClient, username: str, payload: Any, **headers: str) -> httpx.Response:
    token = await gql.token(username)
    return await gql.http.post(
        "/graphql", json=payload, headers={"Authorization": f"Bearer {token}", **headers}
    )


def _assert_json_error(response: httpx.Response, code: str) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/"), response.text
    assert response.headers.get("x-request-id")
    assert response.headers.get("x-content-type-options") == "nosniff"
    body: dict[str, Any] = response.json()
    assert "data" not in body or body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == [code], body
    assert body["errors"][0]["extensions"]["requestId"] == response.headers["x-request-id"]
    return body


@pytest.mark.parametrize("prefix", [",", "\ufeff", "# note\n", "query Q { me { user { id } } } "])
async def test_partner_token_writes_commit_however_the_mutation_is_spelled(
    gql: GraphQLClient, prefix: str
) -> None:
    issue = (
        'mutation Issue { issuePartnerToken(input: {partnerName: "acme-partner", '
        'scopes: ["customers:read"], expiresInDays: 1}) { id token } }'
    )
    issued = (await _raw(gql, "admin", {"query": prefix + issue, "operationName": "Issue"})).json()
    token = issued["data"]["issuePartnerToken"]
    partner = {"Authorization": f"Bearer {token['token']}"}
    works = await gql.http.post("/graphql", json={"query": CUSTOMERS}, headers=partner)
    assert works.status_code == 200  # the token handed out exists

    revoke = prefix + "mutation Revoke($id: ID!) { revokeToken(id: $id) }"
    payload = {"query": revoke, "variables": {"id": token["id"]}, "operationName": "Revoke"}
    revoked = (await _raw(gql, "admin", payload)).json()
    assert revoked["data"]["revokeToken"] is True
    refused = await gql.http.post("/graphql", json={"query": CUSTOMERS}, headers=partner)
    assert refused.status_code == 401  # and the revoke that answered true did revoke


async def test_an_empty_query_is_a_parse_failure_in_json(gql: GraphQLClient) -> None:
    response = await _raw(gql, "alice", {"query": ""})
    assert response.status_code == 200  # legacy application/json: request errors answer 200
    _assert_json_error(response, "GRAPHQL_PARSE_FAILED")
    strict = await _raw(gql, "alice", {"query": ""}, accept="application/graphql-response+json")
    assert strict.status_code == 400
    assert strict.headers["content-type"].startswith("application/graphql-response+json")
    _assert_json_error(strict, "GRAPHQL_PARSE_FAILED")


async def test_an_operation_name_that_names_no_operation_runs_nothing(
    gql: GraphQLClient,
) -> None:
    response = await _raw(gql, "alice", {"query": CUSTOMERS, "operationName": "Missing"})
    _assert_json_error(response, "OPERATION_RESOLUTION_FAILURE")


async def test_several_operations_need_an_operation_name(gql: GraphQLClient) -> None:
    two = "query A { customers(first: 1) { totalCount } } query B { me { user { id } } }"
    response = await _raw(gql, "alice", {"query": two})
    _assert_json_error(response, "OPERATION_RESOLUTION_FAILURE")  # not "the first one"
    chosen = (await _raw(gql, "alice", {"query": two, "operationName": "B"})).json()
    assert set(chosen["data"]) == {"me"}


async def test_validation_failures_have_their_own_code(gql: GraphQLClient) -> None:
    body = (await _raw(gql, "alice", {"query": "{ customers { nope } }"})).json()
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    typed = await _raw(
        gql,
        "alice",
        {
            "query": "query($n: Int) { customers(first: $n) { totalCount } }",
            "variables": {"n": "x"},
        },
    )
    assert error_codes(typed.json()) == ["BAD_USER_INPUT"]  # a bad value, not a bad document


async def test_get_points_at_post_with_allow(gql: GraphQLClient) -> None:
    token = await gql.token("alice")
    refused = await gql.http.get(
        "/graphql", params={"query": CUSTOMERS}, headers={"Authorization": f"Bearer {token}"}
    )
    assert refused.status_code == 405
    assert refused.headers["allow"] == "POST"
    _assert_json_error(refused, "METHOD_NOT_ALLOWED")


def _forged(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "raw_id",
    [
        _forged("Customer:²"),  # superscript two: int() refuses it
        _forged("Customer:３"),  # fullwidth three: int() reads 3
        _forged("Customer:٣"),  # Arabic-Indic three
        _forged(f"Customer:{2**63}"),  # past BIGINT
        _forged("Customer:03"),  # not the canonical spelling of 3
        _forged("Customer:-3"),
        to_global_id("Customer", 3) + "=",  # padding: not the form we issue
    ],
)
async def test_global_ids_are_decoded_strictly(gql: GraphQLClient, raw_id: str) -> None:
    for query in (
        "query($id: ID!) { customer(id: $id) { id name } }",
        "query($id: ID!) { node(id: $id) { id } }",
    ):
        body = await gql.query("alice", query, {"id": raw_id})
        assert error_codes(body) == ["BAD_USER_INPUT"], (raw_id, body)
        assert not any((body.get("data") or {}).values()), body
    write = "mutation($id: ID!) { updateCustomer(id: $id, input: {level: A}) { id } }"
    body = await gql.query("alice", write, {"id": raw_id})
    assert error_codes(body) == ["BAD_USER_INPUT"], (raw_id, body)


async def test_the_canonical_id_still_reads(gql: GraphQLClient, demo_engine: AsyncEngine) -> None:
    alice = await oracle.user_id(demo_engine, "alice")
    own = sorted(await oracle.customer_ids(demo_engine, "owner_id = :u", u=alice))[0]
    body = await gql.query("alice", "query($id: ID!) { node(id: $id) { id } }", {"id": own})
    assert body["data"]["node"] == {"id": own}


async def test_a_literal_a_scalar_refuses_is_bad_input(gql: GraphQLClient) -> None:
    """Decimal refuses "" with no location: still a bad value, not a broken document."""
    body = await gql.query("dave", '{ customers(filter: {totalSpendGte: ""}) { totalCount } }')
    assert error_codes(body) == ["BAD_USER_INPUT"], body
