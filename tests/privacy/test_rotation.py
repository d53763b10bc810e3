"""`dossier keys rotate`: every data key is re-wrapped under the new key (the values it seals
are not rewritten), older field-key values are re-encrypted, and every record reads the same."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import text

from api.seed.demo import seed_demo
from db.crypto import ENVELOPE, FieldCipher
from db.rotation import rotate_field_keys
from tests.conftest import fresh_database, migrated_engine, settings_for

ENCRYPTED = (
    ("customers", "phone_enc", "customer.phone"),
    ("customers", "id_number_enc", "customer.id_number"),
    ("contacts", "phone_enc", "contact.phone"),
    ("customers", "email_enc", "customer.email"),
    ("customers", "address_enc", "customer.address"),
    ("contacts", "email_enc", "contact.email"),
)


async def _values(engine, cipher: FieldCipher) -> dict[tuple[str, str, int], str | None]:
    found: dict[tuple[str, str, int], str | None] = {}
    async with engine.connect() as connection:
        for table, column, label in ENCRYPTED:
            rows = await connection.execute(
                text(f"SELECT id, {column} AS v, data_key FROM {table} WHERE {column} IS NOT NULL")  # noqa: S608
            )
            for row in rows:
                found[(table, column, row.id)] = cipher.decrypt(label, row.v, row.data_key)
        rows = await connection.execute(
            text(
                "SELECT id, custom_fields->>'wechat' AS v FROM customers"
                " WHERE custom_fields ? 'wechat'"
            )
        )
        for row in rows:
            found[("customers", "cf.wechat", row.id)] = cipher.decrypt("customer.cf.wechat", row.v)
    return found


async def _sealed(engine) -> dict[tuple[str, str, int], str]:
    """The stored ciphertexts of the personal columns, as they are."""
    found: dict[tuple[str, str, int], str] = {}
    async with engine.connect() as connection:
        for table, column, _ in ENCRYPTED:
            rows = await connection.execute(
                text(f"SELECT id, {column} AS v FROM {table} WHERE {column} IS NOT NULL")  # noqa: S608
            )
            found.update({(table, column, row.id): row.v for row in rows})
    return found


@pytest.fixture
def rotation_url() -> Iterator[str]:
    with fresh_database("dossier_rotate") as url:
        yield url


async def test_rotation_rewrites_every_value_under_the_active_key(
    rotation_url: str, tmp_path: Path
) -> None:
    settings = settings_for(rotation_url, tmp_path)
    old = settings.field_cipher
    async with migrated_engine(settings) as engine:
        await seed_demo(engine, old, customers=12)
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO custom_field_definitions (resource, key, type, sensitive)"
                    " VALUES ('customer', 'wechat', 'TEXT', true)"
                )
            )
            await connection.execute(
                text(
                    "UPDATE customers SET custom_fields = CAST(:cf AS jsonb)"
                    " WHERE id = (SELECT min(id) FROM customers)"
                ),
                {
                    "cf": orjson.dumps(
                        {"wechat": old.encrypt("customer.cf.wechat", "wx-1")}
                    ).decode()
                },
            )
            # rows from before migration 0015: e-mail and address still in clear columns
            await connection.execute(
                text(
                    "UPDATE customers SET email = 'legacy@old.example.cn', email_enc = NULL,"
                    " email_bidx = NULL, address = '旧地址 1 号', address_enc = NULL,"
                    " address_bidx = NULL WHERE id = (SELECT max(id) FROM customers)"
                )
            )
            await connection.execute(
                text(
                    "UPDATE contacts SET email = 'Legacy.Contact@old.example.cn',"
                    " email_enc = NULL, email_bidx = NULL, data_key = NULL, phone_enc = :p"
                    " WHERE id = (SELECT max(id) FROM contacts)"
                ),
                {"p": old.encrypt("contact.phone", "+8613900000000")},  # the field-key form
            )
        before = await _values(engine, old)
        assert len(before) > 12 and "wx-1" in before.values()
        assert "legacy@old.example.cn" not in before.values()
        sealed_before = await _sealed(engine)
        # all under data keys but the old contact's phone
        assert sum(not v.startswith(ENVELOPE) for v in sealed_before.values()) == 1
        async with engine.connect() as connection:
            wrapped = (
                await connection.execute(
                    text(
                        "SELECT (SELECT count(*) FROM customers WHERE data_key IS NOT NULL)"
                        " + (SELECT count(*) FROM contacts WHERE data_key IS NOT NULL)"
                    )
                )
            ).scalar_one()
        assert wrapped > 12

        key = base64.urlsafe_b64encode(os.urandom(32))
        new = FieldCipher(
            keys={**old.keys, "k2": base64.urlsafe_b64decode(key)},
            active_key_id="k2",
            blind_index_key=old.blind_index_key,
        )
        report = await rotate_field_keys(engine, new)
        # one re-wrap per data key (the old contact gets its customer's), the custom value under
        # a field key, the old contact's phone moved under the data key, the two clear rows
        assert report.total == (wrapped + 1) + 1 + 1 + 2, report.rewritten
        assert report.rewritten["contacts.phone_enc"] == 1
        assert report.rewritten["customers.phone_enc"] == 0
        sealed_after = await _sealed(engine)
        changed = {k for k in sealed_before if sealed_after[k] != sealed_before[k]}
        assert [k[:2] for k in changed] == [("contacts", "phone_enc")]  # the old one only
        # and it is under the contact's data key now: erasure shreds it like the rest
        assert all(sealed_after[k].startswith(ENVELOPE) for k in changed)
        after = await _values(engine, new)
        sealed_now = {k: v for k, v in after.items() if k not in before}
        assert sorted(sealed_now.values()) == sorted(
            ["legacy@old.example.cn", "旧地址 1 号", "Legacy.Contact@old.example.cn"]
        )
        assert {k: after[k] for k in before} == before
        async with engine.connect() as connection:
            clear = (
                await connection.execute(
                    text(
                        "SELECT (SELECT count(*) FROM customers WHERE email IS NOT NULL"
                        " OR address IS NOT NULL) + (SELECT count(*) FROM contacts"
                        " WHERE email IS NOT NULL), (SELECT email_bidx FROM contacts"
                        " WHERE id = (SELECT max(id) FROM contacts))"
                    )
                )
            ).one()
        assert clear[0] == 0  # the clear columns are empty now
        # blind-indexed case-insensitively, as duplicate checks and filter.email look it up
        assert clear[1] == new.blind_index("contact.email", "legacy.contact@old.example.cn")
        before = after
        # everything is under k2 now: a ring without the old key reads it all
        only_new = FieldCipher(
            keys={"k2": new.keys["k2"]}, active_key_id="k2", blind_index_key=old.blind_index_key
        )
        assert await _values(engine, only_new) == before
        assert (await rotate_field_keys(engine, new)).total == 0  # nothing left to do
