"""`dossier keys rotate`: every encrypted value ends under the new key and reads the same."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import text

from api.seed.demo import seed_demo
from db.crypto import FieldCipher
from db.rotation import rotate_field_keys
from tests.conftest import fresh_database, migrated_engine, settings_for

ENCRYPTED = (
    ("customers", "phone_enc", "customer.phone"),
    ("customers", "id_number_enc", "customer.id_number"),
    ("contacts", "phone_enc", "contact.phone"),
)


async def _values(engine, cipher: FieldCipher) -> dict[tuple[str, str, int], str | None]:
    found: dict[tuple[str, str, int], str | None] = {}
    async with engine.connect() as connection:
        for table, column, label in ENCRYPTED:
            rows = await connection.execute(
                text(f"SELECT id, {column} AS v FROM {table} WHERE {column} IS NOT NULL")  # noqa: S608
            )
            for row in rows:
                found[(table, column, row.id)] = cipher.decrypt(label, row.v)
        rows = await connection.execute(
            text(
                "SELECT id, custom_fields->>'wechat' AS v FROM customers"
                " WHERE custom_fields ? 'wechat'"
            )
        )
        for row in rows:
            found[("customers", "cf.wechat", row.id)] = cipher.decrypt("customer.cf.wechat", row.v)
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
        before = await _values(engine, old)
        assert len(before) > 12 and "wx-1" in before.values()

        key = base64.urlsafe_b64encode(os.urandom(32))
        new = FieldCipher(
            keys={**old.keys, "k2": base64.urlsafe_b64decode(key)},
            active_key_id="k2",
            blind_index_key=old.blind_index_key,
        )
        report = await rotate_field_keys(engine, new)
        assert report.total == len(before)
        assert await _values(engine, new) == before
        # everything is under k2 now: a ring without the old key reads it all
        only_new = FieldCipher(
            keys={"k2": new.keys["k2"]}, active_key_id="k2", blind_index_key=old.blind_index_key
        )
        assert await _values(engine, only_new) == before
        assert (await rotate_field_keys(engine, new)).total == 0  # nothing left to do
