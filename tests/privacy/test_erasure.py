"""eraseCustomer: afterwards no plain value of the person is anywhere in the database, the chain
verifies, and the erasure itself is in the trail with its reason."""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.seed import identifiers
from api.settings import Settings
from audit.verify import verify_chain
from tests.graphql.conftest import GraphQLClient, error_codes
from tests.privacy.conftest import create_person
from tests.privacy.test_consents import RECORD, customer_pk
from tests.privacy.test_report import ADD_CONTACT, READ

ERASE = """mutation($id: ID!, $r: String!) { eraseCustomer(id: $id, reason: $r) }"""
UPDATE = """
mutation($id: ID!, $input: CustomerPatch!) {
  updateCustomer(id: $id, input: $input, force: true) { id }
}"""
ADD_INTERACTION = """
mutation($input: InteractionInput!) { createInteraction(input: $input) { id } }"""
SCANNED_TYPES = ("text", "character varying", "character", "jsonb", "json", "ARRAY", "bytea")


async def scan(connection: AsyncConnection, needles: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(table, column, which needle) for every text, varchar, jsonb, array and bytea column of
    every table that holds one of `needles` (str: as a substring; bytes: inside a bytea)."""
    columns = (
        await connection.execute(
            text(
                "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c"
                " JOIN information_schema.tables t USING (table_schema, table_name)"
                " WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'"
                " AND c.data_type = ANY(:types)"
            ),
            {"types": list(SCANNED_TYPES)},
        )
    ).all()
    found: set[tuple[str, str, str]] = set()
    for table, column, data_type in columns:
        for label, needle in needles.items():
            if data_type == "bytea":
                if not isinstance(needle, bytes):
                    needle = needle.encode()
                condition = f'position(:n IN "{column}") > 0'
            elif isinstance(needle, bytes):
                continue
            else:
                condition = f'strpos(lower("{column}"::text), lower(:n)) > 0'
            hit = await connection.execute(
                text(f'SELECT 1 FROM "{table}" WHERE {condition} LIMIT 1'),  # noqa: S608
                {"n": needle},
            )
            if hit.first() is not None:
                found.add((table, column, label))
    return found


async def test_after_erasure_no_plain_value_of_the_person_is_left(
    gql: GraphQLClient, demo_engine: AsyncEngine, demo_settings: Settings
) -> None:
    customer, values = await create_person(gql)
    pk = customer_pk(customer)
    cipher = demo_settings.field_cipher
    id_number = identifiers.id_number(random.Random(f"erase-{pk}"), "310101")
    async with demo_engine.begin() as connection:  # alice may not write id numbers: store one
        await connection.execute(
            text("UPDATE customers SET id_number_enc = :e, id_number_bidx = :b WHERE id = :id"),
            {
                "e": cipher.encrypt("customer.id_number", id_number),
                "b": cipher.blind_index("customer.id_number", id_number),
                "id": pk,
            },
        )
    contact_phone = "+8613700001234"
    body = await gql.query(
        "alice",
        ADD_CONTACT,
        {
            "input": {
                "customerId": customer,
                "name": values["name"] + "的妻子",
                "phone": contact_phone,
                "email": "spouse-" + values["email"],
            }
        },
    )
    assert "errors" not in body, body
    # a change of the personal fields goes through the trail as well
    new_address = values["address"].replace("号", "室 2 号")
    body = await gql.query("alice", UPDATE, {"id": customer, "input": {"address": new_address}})
    assert "errors" not in body, body
    await gql.query("alice", RECORD, {"c": customer, "p": "marketing", "e": values["name"]})
    summary = values["name"] + "来电，地址 " + new_address
    note = await gql.query(
        "alice",
        ADD_INTERACTION,
        {"input": {"customerId": customer, "channel": "CALL", "summary": summary}},
    )
    assert "errors" not in note, note
    for username in ("bob", "alice"):
        await gql.query(username, READ, {"id": customer})

    needles: dict[str, Any] = {
        "name": values["name"],
        "phone": values["phone"],
        "national phone": values["phone"].removeprefix("+86"),
        "email": values["email"],
        "address": values["address"],
        "new address": new_address,
        "idNumber": id_number,
        "contact phone": contact_phone.removeprefix("+86"),
        "contact email": "spouse-" + values["email"],
        "phone blind index": cipher.blind_index("customer.phone", values["phone"]),
        "id blind index": cipher.blind_index("customer.id_number", id_number),
        "contact phone blind index": cipher.blind_index("contact.phone", contact_phone),
    }
    async with demo_engine.connect() as connection:
        stored = (
            await connection.execute(
                text("SELECT phone_enc, id_number_enc FROM customers WHERE id = :id"), {"id": pk}
            )
        ).one()
        needles["phone ciphertext"] = stored.phone_enc
        needles["id ciphertext"] = stored.id_number_enc
        before = {label for _, _, label in await scan(connection, needles)}
    # the scan finds what is there (phones and the id number are ciphertext at rest already;
    # the first address was overwritten by the update and masked in its trail)
    encrypted_at_rest = {"phone", "national phone", "idNumber", "contact phone", "address"}
    assert before == set(needles) - encrypted_at_rest, before

    for username in ("alice", "bob", "admin"):
        body = await gql.query(username, ERASE, {"id": customer, "r": "test"})
        assert error_codes(body) == ["FORBIDDEN"], (username, body)
    body = await gql.query("erin", ERASE, {"id": customer, "r": "个人信息删除请求 #42"})
    assert body == {"data": {"eraseCustomer": True}}, body
    again = await gql.query("erin", ERASE, {"id": customer, "r": "again"})
    assert again == {"data": {"eraseCustomer": False}}, again

    async with demo_engine.connect() as connection:
        assert await scan(connection, needles) == set()
        report = await verify_chain(connection)
        assert report.ok, report.describe()
        erased = (
            await connection.execute(
                text(
                    "SELECT actor, changes FROM audit_events WHERE action = 'DELETE'"
                    " AND resource_type = 'customer' AND resource_ids @> ARRAY[:id]"
                ),
                {"id": str(pk)},
            )
        ).one()
        name = (
            await connection.execute(text("SELECT name FROM customers WHERE id = :id"), {"id": pk})
        ).scalar_one()
    assert erased.actor == "erin" and erased.changes["reason"] == "个人信息删除请求 #42"
    assert erased.changes["erased"] is True
    assert name == f"已删除 erased #{pk}"
    # the erased customer is gone for readers
    read = await gql.query("alice", READ, {"id": customer})
    assert read["data"]["node"] is None
