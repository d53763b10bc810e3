"""`dossier keys rotate`: re-wrap data keys, and re-encrypt values sealed directly under an old
field key, so that nothing depends on a field key but the active one.

Values carry their key id (`db.crypto`), so rotation needs no downtime: configure the new key as
active with the old one still in the ring (`DOSSIER_FIELD_KEYS=new:…,old:…`), restart, run this,
and only then drop the old key. Rows are rewritten in batches, each its own short transaction,
and a value is only replaced if it is still the one that was read (a concurrent write wins), so
running servers keep reading and writing throughout; running it again finishes what is left.

Personal values under a record's data key (`@…`, envelope encryption) are not touched: only
the wrapped data keys (`customers.data_key`, and the copies in `contacts.data_key`) are
re-wrapped, one short value per record, however many values it seals. Phones and id numbers
written before envelope encryption, under a field key, are moved under their record's data key
(made when missing), so erasure shreds them too; they stay readable throughout. Also rotated:
webhook secrets and sensitive custom field values inside `custom_fields`. Blind indexes use
their own key and do not change.

It also finishes migration 0015: e-mail and address values still in their clear columns are
sealed under the record's data key (made when missing), blind-indexed, and the clear column
emptied — the same compare-and-set batches, so servers keep running.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.crypto import DATA_KEY_LABEL, ENVELOPE, FieldCipher

BATCH = 500
# table → {column: cipher label}
COLUMNS: dict[str, dict[str, str]] = {
    "customers": {"data_key": DATA_KEY_LABEL},
    "contacts": {"data_key": DATA_KEY_LABEL},
    "webhooks": {"secret_enc": "webhook.secret"},
}
# personal values written before envelope encryption: moved under the record's data key
PERSONAL: dict[str, dict[str, str]] = {
    "customers": {"phone_enc": "customer.phone", "id_number_enc": "customer.id_number"},
    "contacts": {"phone_enc": "contact.phone"},
}
CUSTOM_TABLES = {
    "customers": "customer",
    "contacts": "contact",
    "opportunities": "opportunity",
    "tickets": "ticket",
}


def _email_form(value: str) -> str:
    """`validation.email.email_lookup_form` (db imports nothing above it): case-insensitive."""
    return unicodedata.normalize("NFKC", value).strip().lower()


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
        f" AND {column} NOT LIKE :prefix AND {column} NOT LIKE '{ENVELOPE}%'"
        f" AND id > :after ORDER BY id LIMIT {BATCH}"
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


async def _seal_clear_customers(engine: AsyncEngine, cipher: FieldCipher) -> int:
    select_clear = text(
        "SELECT id, email, address, data_key FROM customers"
        " WHERE (email IS NOT NULL OR address IS NOT NULL) AND id > :after"
        " ORDER BY id LIMIT :limit"
    )
    update = text(
        "UPDATE customers SET data_key = :key,"
        " email_enc = coalesce(:email_enc, email_enc),"
        " email_bidx = coalesce(:email_bidx, email_bidx),"
        " address_enc = coalesce(:address_enc, address_enc),"
        " address_bidx = coalesce(:address_bidx, address_bidx), email = NULL, address = NULL"
        " WHERE id = :id AND email IS NOT DISTINCT FROM :email"
        " AND address IS NOT DISTINCT FROM :address AND data_key IS NOT DISTINCT FROM :old_key"
    )
    done, after = 0, 0
    while True:
        async with engine.begin() as connection:
            rows = (await connection.execute(select_clear, {"after": after, "limit": BATCH})).all()
            for row in rows:
                key = row.data_key or cipher.new_data_key()
                email = row.email
                values = {
                    "id": row.id, "email": email, "address": row.address,
                    "old_key": row.data_key, "key": key,
                    "email_enc": cipher.encrypt("customer.email", email, key),
                    "email_bidx": cipher.blind_index(
                        "customer.email", _email_form(email) if email else None
                    ),
                    "address_enc": cipher.encrypt("customer.address", row.address, key),
                    "address_bidx": cipher.blind_index("customer.address", row.address),
                }  # fmt: skip
                done += (await connection.execute(update, values)).rowcount
        if len(rows) < BATCH:
            return done
        after = rows[-1].id


async def _seal_clear_contacts(engine: AsyncEngine, cipher: FieldCipher) -> int:
    select_clear = text(
        "SELECT c.id, c.email, coalesce(c.data_key, u.data_key) AS data_key, c.customer_id"
        " FROM contacts c JOIN customers u ON u.id = c.customer_id"
        " WHERE c.email IS NOT NULL AND c.id > :after ORDER BY c.id LIMIT :limit"
    )
    give_customer = text(
        "UPDATE customers SET data_key = coalesce(data_key, :key) WHERE id = :id RETURNING data_key"
    )
    update = text(
        "UPDATE contacts SET data_key = coalesce(data_key, :key), email_enc = :enc,"
        " email_bidx = :bidx, email = NULL"
        " WHERE id = :id AND email = :email AND coalesce(data_key, :key) = :key"
    )
    done, after = 0, 0
    while True:
        async with engine.begin() as connection:
            rows = (await connection.execute(select_clear, {"after": after, "limit": BATCH})).all()
            for row in rows:
                key = row.data_key
                if key is None:  # the customer gets one, its contacts a copy
                    given = {"key": cipher.new_data_key(), "id": row.customer_id}
                    key = (await connection.execute(give_customer, given)).scalar_one()
                values = {
                    "id": row.id, "email": row.email, "key": key,
                    "enc": cipher.encrypt("contact.email", row.email, key),
                    "bidx": cipher.blind_index("contact.email", _email_form(row.email)),
                }  # fmt: skip
                done += (await connection.execute(update, values)).rowcount
        if len(rows) < BATCH:
            return done
        after = rows[-1].id


async def _envelope_customers(
    engine: AsyncEngine, cipher: FieldCipher, column: str, label: str
) -> int:
    select_old = text(
        f"SELECT id, {column} AS v, data_key FROM customers WHERE {column} IS NOT NULL"  # noqa: S608
        f" AND {column} NOT LIKE '{ENVELOPE}%' AND id > :after ORDER BY id LIMIT :limit"
    )
    update = text(
        f"UPDATE customers SET {column} = :new, data_key = :key WHERE id = :id"  # noqa: S608
        f" AND {column} = :old AND data_key IS NOT DISTINCT FROM :old_key"
    )
    done, after = 0, 0
    while True:
        async with engine.begin() as connection:
            rows = (await connection.execute(select_old, {"after": after, "limit": BATCH})).all()
            for row in rows:
                key = row.data_key or cipher.new_data_key()
                new = cipher.encrypt(label, cipher.decrypt(label, row.v), key)
                values = {"new": new, "key": key, "id": row.id, "old": row.v,
                          "old_key": row.data_key}  # fmt: skip
                done += (await connection.execute(update, values)).rowcount
        if len(rows) < BATCH:
            return done
        after = rows[-1].id


async def _envelope_contacts(engine: AsyncEngine, cipher: FieldCipher, label: str) -> int:
    envelope = f"{ENVELOPE}%"
    select_old = text(
        "SELECT c.id, c.phone_enc AS v, coalesce(c.data_key, u.data_key) AS data_key,"
        " c.customer_id FROM contacts c JOIN customers u ON u.id = c.customer_id"
        " WHERE c.phone_enc IS NOT NULL AND c.phone_enc NOT LIKE :envelope"
        " AND c.id > :after ORDER BY c.id LIMIT :limit"
    )
    give_customer = text(
        "UPDATE customers SET data_key = coalesce(data_key, :key) WHERE id = :id RETURNING data_key"
    )
    update = text(
        "UPDATE contacts SET phone_enc = :new, data_key = coalesce(data_key, :key)"
        " WHERE id = :id AND phone_enc = :old AND coalesce(data_key, :key) = :key"
    )
    done, after = 0, 0
    while True:
        async with engine.begin() as connection:
            rows = (
                await connection.execute(
                    select_old, {"after": after, "limit": BATCH, "envelope": envelope}
                )
            ).all()
            for row in rows:
                key = row.data_key
                if key is None:  # the customer gets one, its contacts a copy
                    given = {"key": cipher.new_data_key(), "id": row.customer_id}
                    key = (await connection.execute(give_customer, given)).scalar_one()
                new = cipher.encrypt(label, cipher.decrypt(label, row.v), key)
                values = {"new": new, "key": key, "id": row.id, "old": row.v}
                done += (await connection.execute(update, values)).rowcount
        if len(rows) < BATCH:
            return done
        after = rows[-1].id


async def rotate_field_keys(engine: AsyncEngine, cipher: FieldCipher) -> RotationReport:
    """Re-wrap data keys and re-encrypt every value not under `cipher.active_key_id`, and seal
    e-mails and addresses still in clear columns; how many, per column."""
    report = RotationReport()
    report.rewritten["customers.email/address (clear)"] = await _seal_clear_customers(
        engine, cipher
    )
    report.rewritten["contacts.email (clear)"] = await _seal_clear_contacts(engine, cipher)
    for column, label in PERSONAL["customers"].items():
        report.rewritten[f"customers.{column}"] = await _envelope_customers(
            engine, cipher, column, label
        )
    report.rewritten["contacts.phone_enc"] = await _envelope_contacts(
        engine, cipher, PERSONAL["contacts"]["phone_enc"]
    )
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
