"""E-mail and address are encrypted at rest under the customer's data key like the phone; the
exact-match e-mail filter goes through the blind index, case-insensitively."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.graphql.conftest import GraphQLClient
from tests.privacy.conftest import create_person
from tests.privacy.test_consents import customer_pk
from tests.privacy.test_report import ADD_CONTACT

BY_EMAIL = """
query($e: String) {
  customers(first: 10, filter: {email: $e}) { totalCount nodes { id email address phone } }
}"""


async def test_personal_values_are_ciphertext_under_the_data_key_and_read_back(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    customer, values = await create_person(gql)
    contact_email = "Spouse." + values["email"]
    body = await gql.query(
        "alice",
        ADD_CONTACT,
        {"input": {"customerId": customer, "name": "家属", "email": contact_email}},
    )
    assert "errors" not in body, body
    async with demo_engine.connect() as connection:
        row = (
            await connection.execute(
                text("SELECT row_to_json(c)::text AS raw, c.* FROM customers c WHERE id = :id"),
                {"id": customer_pk(customer)},
            )
        ).one()
        contact = (
            await connection.execute(
                text(
                    "SELECT row_to_json(c)::text AS raw, c.* FROM contacts c"
                    " WHERE customer_id = :id"
                ),
                {"id": customer_pk(customer)},
            )
        ).one()
    for value in (values["email"], values["address"], values["phone"][3:]):
        assert value not in row.raw
    assert contact_email.lower() not in contact.raw.lower()
    assert row.email is None and row.address is None and contact.email is None
    for sealed in (row.email_enc, row.address_enc, row.phone_enc, contact.email_enc):
        assert sealed.startswith("@")  # under the data key, not a field key
    assert contact.data_key == row.data_key

    # exact match through the blind index, whatever the case; the values decrypt in the answer
    found = await gql.query("alice", BY_EMAIL, {"e": values["email"].upper()})
    assert found["data"]["customers"]["totalCount"] == 1, found
    node = found["data"]["customers"]["nodes"][0]
    assert node == {
        "id": customer,
        "email": values["email"],
        "address": values["address"],
        "phone": values["phone"],
    }
    missing = await gql.query("alice", BY_EMAIL, {"e": "x" + values["email"]})
    assert missing["data"]["customers"]["totalCount"] == 0
