"""Partner tokens: shared customers only, named fields only, scopes bound what policies allow."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from identity.partner_tokens import issue_partner_token
from schema.node import to_global_id
from tests.graphql import oracle
from tests.graphql.conftest import GraphQLClient, forbidden_fields


async def partner_token(
    engine: AsyncEngine, customer_ids: Sequence[int] | None, scopes: Sequence[str]
) -> str:
    async with async_sessionmaker(engine)() as session:
        issued = await issue_partner_token(
            session,
            partner_name="acme-partner",
            scopes=scopes,
            customer_ids=customer_ids,
            expires_in_days=1,
            issued_by="test",
        )
        await session.commit()
    return issued.token


async def as_partner(gql: GraphQLClient, token: str, query: str) -> dict[str, object]:
    response = await gql.http.post(
        "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def shared_ids(engine: AsyncEngine) -> list[int]:
    return [r.id for r in await oracle.rows(engine, "SELECT id FROM customers ORDER BY id LIMIT 3")]


async def test_partner_sees_only_shared_customers_and_named_fields(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    shared = await shared_ids(demo_engine)
    token = await partner_token(demo_engine, shared, ["customers:read", "contacts:read"])
    body = await as_partner(
        gql,
        token,
        """{ customers(first: 500) { totalCount nodes { id name industry region phone
             owner { username } contacts { nodes { name title phone } } } } }""",
    )
    page = body["data"]["customers"]  # type: ignore[index]
    assert page["totalCount"] == 3
    assert {n["id"] for n in page["nodes"]} == {to_global_id("Customer", i) for i in shared}
    for node in page["nodes"]:
        assert node["name"] and node["industry"]
        assert node["region"] is None and node["phone"] is None and node["owner"] is None
        assert node["contacts"]["nodes"] and all(
            c["name"] and c["phone"] is None for c in node["contacts"]["nodes"]
        )
    assert forbidden_fields(body) == {
        "Customer.region", "Customer.phone", "Customer.owner", "Contact.phone",
    }  # fmt: skip


async def test_partner_cannot_reach_an_unshared_customer_by_id(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    shared = await shared_ids(demo_engine)
    token = await partner_token(demo_engine, shared, ["customers:read"])
    other = (await oracle.rows(demo_engine, "SELECT max(id) AS id FROM customers"))[0].id
    other_id = to_global_id("Customer", other)
    query = f'{{ customer(id: "{other_id}") {{ name }} node(id: "{other_id}") {{ id }} }}'
    body = await as_partner(gql, token, query)
    assert body["data"] == {"customer": None, "node": None}


async def test_token_scopes_narrow_what_policies_allow(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    shared = await shared_ids(demo_engine)
    token = await partner_token(demo_engine, shared, ["customers:read"])
    body = await as_partner(
        gql, token, "{ contacts { totalCount } customers { nodes { contacts { totalCount } } } }"
    )
    assert body["data"]["contacts"]["totalCount"] == 0  # type: ignore[index]
    nested = body["data"]["customers"]["nodes"]  # type: ignore[index]
    assert all(n["contacts"]["totalCount"] == 0 for n in nested)


async def test_partner_never_reads_opportunities_or_tickets(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    token = await partner_token(
        demo_engine, None, ["customers:read", "opportunities:read", "tickets:read"]
    )
    body = await as_partner(
        gql,
        token,
        "{ opportunities { totalCount } tickets { totalCount } customers { totalCount } }",
    )
    data = body["data"]
    assert data["opportunities"]["totalCount"] == 0  # type: ignore[index]
    assert data["tickets"]["totalCount"] == 0  # type: ignore[index]
    all_customers = len(await oracle.customer_ids(demo_engine))
    assert data["customers"]["totalCount"] == all_customers  # type: ignore[index]


async def test_unauthenticated_graphql_is_refused(gql: GraphQLClient) -> None:
    response = await gql.http.post("/graphql", json={"query": "{ me { user { id } } }"})
    assert response.status_code == 401
    forged = await gql.http.post(
        "/graphql",
        json={"query": "{ customers { totalCount } }"},
        headers={"Authorization": "Bearer dpt_notarealtoken"},
    )
    assert forged.status_code == 401
    assert isinstance(gql.http, httpx.AsyncClient)
