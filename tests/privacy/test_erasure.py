"""eraseCustomer: afterwards no plain value of the person is anywhere in the database nor in what
the audit archive would write, the chain verifies, the ciphertexts kept anywhere cannot be
decrypted any more (their data key is gone), and the erasure is in the trail with its reason."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.seed import identifiers
from api.settings import Settings
from audit.queries import event_document
from audit.verify import verify_chain
from db.crypto import DataKeyDestroyedError
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


async def archive_form(connection: AsyncConnection, path: Path) -> None:
    """Every audit row as the archive writes it (`audit.archive.event_document`, one JSON line
    each): an archive takes only whole past months, so today's events are written out here by
    the archive's own serialiser, to be scanned like an archive file."""
    rows = await connection.execute(text("SELECT * FROM audit_events ORDER BY seq"))
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(event_document(row), ensure_ascii=False) + "\n")


def scan_files(paths: list[Path], needles: dict[str, Any]) -> set[tuple[str, str]]:
    """(file, needle) for every text needle found in the files, case-insensitively."""
    found: set[tuple[str, str]] = set()
    for path in paths:
        content = path.read_text(encoding="utf-8").lower()
        for label, needle in needles.items():
            if isinstance(needle, str) and needle.lower() in content:
                found.add((path.name, label))
    return found


async def test_after_erasure_no_plain_value_of_the_person_is_left(
    gql: GraphQLClient, demo_engine: AsyncEngine, demo_settings: Settings, tmp_path: Path
) -> None:
    customer, values = await create_person(gql)
    pk = customer_pk(customer)
    cipher = demo_settings.field_cipher
    id_number = identifiers.id_number(random.Random(f"erase-{pk}"), "310101")
    hobby = f"集邮 stamp-collector {pk}"
    async with demo_engine.begin() as connection:  # alice may not write id numbers: store one
        data_key = (
            await connection.execute(
                text("SELECT data_key FROM customers WHERE id = :id"), {"id": pk}
            )
        ).scalar_one()
        assert data_key is not None  # made with its first personal value
        await connection.execute(
            text(
                "UPDATE customers SET id_number_enc = :e, id_number_bidx = :b,"
                " custom_fields = custom_fields || CAST(:cf AS jsonb) WHERE id = :id"
            ),
            {
                "e": cipher.encrypt("customer.id_number", id_number, data_key),
                "b": cipher.blind_index("customer.id_number", id_number),
                "cf": json.dumps({"hobby": hobby}),
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
        "email blind index": cipher.blind_index("customer.email", values["email"].lower()),
        "contact email blind index": cipher.blind_index(
            "contact.email", "spouse-" + values["email"].lower()
        ),
        "custom field value": hobby,
        "interaction summary": summary,
        "data key": data_key,
    }
    async with demo_engine.connect() as connection:
        stored = (
            await connection.execute(
                text(
                    "SELECT phone_enc, id_number_enc, email_enc, address_enc FROM customers"
                    " WHERE id = :id"
                ),
                {"id": pk},
            )
        ).one()
        contact_stored = (
            await connection.execute(
                text("SELECT phone_enc, email_enc, data_key FROM contacts WHERE customer_id = :id"),
                {"id": pk},
            )
        ).one()
        assert contact_stored.data_key == data_key  # a contact carries its customer's key
        sealed = {
            "customer.phone": stored.phone_enc,
            "customer.id_number": stored.id_number_enc,
            "customer.email": stored.email_enc,
            "customer.address": stored.address_enc,
            "contact.phone": contact_stored.phone_enc,
            "contact.email": contact_stored.email_enc,
        }
        for label, value in sealed.items():
            assert value.startswith("@"), (label, value)  # under the data key
            needles[f"{label} ciphertext"] = value
        before = {label for _, _, label in await scan(connection, needles)}
        await archive_form(connection, tmp_path / "before.jsonl")
    # the scan finds what is there (personal values are ciphertext at rest; the new address is
    # in the interaction's summary, a text the person dictated)
    encrypted_at_rest = {
        "phone", "national phone", "idNumber", "contact phone", "address", "email",
        "contact email",
    }  # fmt: skip
    assert before == set(needles) - encrypted_at_rest, before
    # the trail holds masked values only: even before erasure no archive line has them clear
    in_archive = {label for _, label in scan_files([tmp_path / "before.jsonl"], needles)}
    assert in_archive <= {"name", "interaction summary", "new address"}, in_archive

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
        await archive_form(connection, tmp_path / "after.jsonl")
        archive_files = [tmp_path / "after.jsonl"]
        archive_dir = demo_settings.data_dir / "audit-archive"
        if archive_dir.is_dir():  # any real archive written during the test session
            archive_files += sorted(archive_dir.glob("*.jsonl"))
        assert scan_files(archive_files, needles) == set()
        keys_now = (
            await connection.execute(
                text(
                    "SELECT (SELECT data_key FROM customers WHERE id = :id),"
                    " (SELECT data_key FROM contacts WHERE customer_id = :id)"
                ),
                {"id": pk},
            )
        ).one()
    # crypto-shredding: a copy of the ciphertexts kept elsewhere (a backup) no longer decrypts,
    # not with the field keys, nor with whatever key the rows hold now
    assert tuple(keys_now) == (None, None)
    for label, value in sealed.items():
        with pytest.raises(DataKeyDestroyedError):
            cipher.decrypt(label, value)
    async with demo_engine.connect() as connection:
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


MERGE = """mutation($k: ID!, $m: ID!) { mergeCustomers(keepId: $k, mergeId: $m) { id } }"""


async def test_erasure_reaches_the_duplicates_merged_into_the_customer(
    gql: GraphQLClient, demo_engine: AsyncEngine, demo_settings: Settings
) -> None:
    keep, keep_values = await create_person(gql)
    duplicate, duplicate_values = await create_person(gql)
    body = await gql.query("alice", MERGE, {"k": keep, "m": duplicate})
    assert "errors" not in body, body
    cipher = demo_settings.field_cipher
    needles: dict[str, Any] = {
        "duplicate name": duplicate_values["name"],
        "duplicate phone blind index": cipher.blind_index(
            "customer.phone", duplicate_values["phone"]
        ),
        "duplicate email blind index": cipher.blind_index(
            "customer.email", duplicate_values["email"].lower()
        ),
        "keep name": keep_values["name"],
    }
    async with demo_engine.connect() as connection:
        before = {label for _, _, label in await scan(connection, needles)}
    assert before == set(needles), before  # the merged record still holds its values

    body = await gql.query("erin", ERASE, {"id": keep, "r": "个人信息删除请求 #43"})
    assert body == {"data": {"eraseCustomer": True}}, body
    async with demo_engine.connect() as connection:
        assert await scan(connection, needles) == set()
        assert (await verify_chain(connection)).ok
        keys = (
            await connection.execute(
                text(
                    "SELECT count(*) FROM customers WHERE id = ANY(:ids) AND data_key IS NOT NULL"
                ),
                {"ids": [customer_pk(keep), customer_pk(duplicate)]},
            )
        ).scalar_one()
    assert keys == 0
