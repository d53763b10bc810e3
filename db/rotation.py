"""`dossier keys rotate`: re-encrypt every stored value that is not under the active field key.

Values carry their key id (`db.crypto`), so rotation needs no downtime: configure the new key as
active with the old one still in the ring (`DOSSIER_FIELD_KEYS=new:…,old:…`), restart, run this,
and only then drop the old key. Rows are rewritten in batches, each its own short transaction,
and a value is only replaced if it is still the one that was read (a concurrent write wins), so
running servers keep reading and writing throughout; running it again finishes what is left.

Encrypted columns: customers' phone and id number, contacts' phone, webhook secrets, and
sensitive custom field values inside `custom_fields`. Blind indexes use their own key and do not
change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.crypto import FieldCipher

BATCH = 500
# table → {column: cipher label}
COLUMNS: dict[str, dict[str, str]] = {
    "customers": {"phone_enc": "customer.phone", "id_number_enc": "customer.id_number"},
    "contacts": {"phone_enc": "contact.phone"},
    "webhooks": {"secret_enc": "webhook.secret"},
}
CUSTOM_TABLES = {
    "customers": "customer",
    "contacts": "contact",
    "opportunities": "opportunity",
    "tickets": "ticket",
}


@dataclass
class RotationReport:
    rewritten: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rewritten.values())


async def _rotate_column(
    engine: AsyncEngine, cipher: FieldCipher, table: str, column: str, label: str
) -> int:
    prefix = f"{cipher.active_key_id}:%"
    select_old = text(
        f"SELECT id, {column} AS v FROM {table} WHERE {column} IS NOT NULL"  # noqa: S608
        f" AND {column} NOT LIKE :prefix AND id > :after ORDER BY id LIMIT {BATCH}"
    )
    update = text(
        f"UPDATE {table} SET {column} = :new WHERE id = :id AND {column} = :old"  # noqa: S608
    )
    done, after = 0, 0
    while True:
        async with engine.begin() as connection:
            rows = (await connection.execute(select_old, {"prefix": prefix, "after": after})).all()
            for row in rows:
                new = cipher.encrypt(label, cipher.decrypt(label, row.v))
                result = await connection.execute(update, {"new": new, "id": row.id, "old": row.v})
                done += result.rowcount
        if len(rows) < BATCH:
            return done
        after = rows[-1].id


async def _rotate_custom(
    engine: AsyncEngine, cipher: FieldCipher, table: str, resource: str, keys: list[str]
) -> int:
    if not keys:
        return 0
    select_rows = text(
        f"SELECT id, custom_fields FROM {table} WHERE custom_fields ?| :keys"  # noqa: S608
        f" AND id > :after ORDER BY id LIMIT {BATCH}"
    )
    update = text(
        f"UPDATE {table} SET custom_fields = custom_fields || CAST(:patch AS jsonb)"  # noqa: S608
        " WHERE id = :id AND custom_fields @> CAST(:old AS jsonb)"
    )
    done, after = 0, 0
    while True:
        async with engine.begin() as connection:
            rows = (await connection.execute(select_rows, {"keys": keys, "after": after})).all()
            for row in rows:
                old: dict[str, Any] = {}
                patch: dict[str, Any] = {}
                for key in keys:
                    value = row.custom_fields.get(key)
                    if isinstance(value, str) and cipher.needs_rotation(value):
                        label = f"{resource}.cf.{key}"
                        old[key] = value
                        patch[key] = cipher.encrypt(label, cipher.decrypt(label, value))
                if patch:
                    result = await connection.execute(
                        update,
                        {"patch": orjson.dumps(patch).decode(), "old": orjson.dumps(old).decode(),
                         "id": row.id},
                    )  # fmt: skip
                    done += result.rowcount
        if len(rows) < BATCH:
            return done
        after = rows[-1].id


async def rotate_field_keys(engine: AsyncEngine, cipher: FieldCipher) -> RotationReport:
    """Re-encrypt every value not under `cipher.active_key_id`; how many, per column."""
    report = RotationReport()
    for table, columns in COLUMNS.items():
        for column, label in columns.items():
            report.rewritten[f"{table}.{column}"] = await _rotate_column(
                engine, cipher, table, column, label
            )
    async with engine.connect() as connection:
        sensitive = (
            await connection.execute(
                text("SELECT resource, key FROM custom_field_definitions WHERE sensitive")
            )
        ).all()
    for table, resource in CUSTOM_TABLES.items():
        keys = [row.key for row in sensitive if row.resource == resource]
        report.rewritten[f"{table}.custom_fields"] = await _rotate_custom(
            engine, cipher, table, resource, keys
        )
    return report
