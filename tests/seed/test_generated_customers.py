"""Generated customers: counts per table, ownership, valid identifiers, encryption at rest."""

from __future__ import annotations

import re

import asyncpg
import pytest

from api.seed import DemoSummary
from api.settings import Settings
from tests.seed.conftest import NOW, SEEDED_CUSTOMERS
from validation.credit_code import is_valid_credit_code
from validation.email import is_valid_email
from validation.identity_number import normalise_id_number
from validation.phone import normalise_phone
from validation.vocabulary import VocabularyName, default_vocabularies

CHILD_TABLES = {"contacts": 5, "opportunities": 3, "tickets": 2}


async def test_each_customer_has_five_contacts_three_opportunities_two_tickets(
    seeded: DemoSummary, db: asyncpg.Connection
) -> None:
    assert await db.fetchval("SELECT count(*) FROM customers") == SEEDED_CUSTOMERS
    for table, per_customer in CHILD_TABLES.items():
        spread = await db.fetch(
            f"SELECT DISTINCT count(*) AS n FROM {table} GROUP BY customer_id"  # noqa: S608  # fixed names
        )
        assert [row["n"] for row in spread] == [per_customer], table
        assert seeded.counts[table] == SEEDED_CUSTOMERS * per_customer
    for table, count in seeded.counts.items():
        assert await db.fetchval(f"SELECT count(*) FROM {table}") == count, table  # noqa: S608
    assert seeded.counts["interactions"] > 0
    assert seeded.counts["opportunity_stage_changes"] > 0


async def test_customers_belong_to_the_sales_teams_and_key_accounts_to_sales(
    seeded: DemoSummary, db: asyncpg.Connection
) -> None:
    rows = await db.fetch(
        "SELECT d.name AS department, u.username AS owner, c.level, count(*) AS n "
        "FROM customers c JOIN departments d ON d.id = c.department_id "
        "JOIN users u ON u.id = c.owner_id GROUP BY 1, 2, 3"
    )
    owners: dict[str, set[str]] = {}
    for row in rows:
        owners.setdefault(row["department"], set()).add(row["owner"])
        assert (row["level"] == "A") == (row["department"] == "销售部")
    assert owners == {
        "销售部": {"bob"},
        "华东销售": {"alice", "east-rep-001"},
        "华北销售": {"frank", "north-rep-001"},
    }
    # a customer's opportunities are its owner's; every interaction is by the owner
    mismatched = await db.fetchval(
        "SELECT count(*) FROM opportunities o JOIN customers c ON c.id = o.customer_id "
        "WHERE o.owner_id <> c.owner_id"
    )
    assert mismatched == 0


async def test_phones_are_encrypted_at_rest_and_decrypt_to_valid_numbers(
    seeded: DemoSummary, db: asyncpg.Connection, seed_settings: Settings
) -> None:
    cipher = seed_settings.field_cipher
    for table, label in (("customers", "customer.phone"), ("contacts", "contact.phone")):
        rows = await db.fetch(
            f"SELECT row_to_json(t)::text AS raw, phone_enc, phone_bidx, data_key FROM {table} t "  # noqa: S608
            "ORDER BY id LIMIT 2000"
        )
        for row in rows:
            phone = cipher.decrypt(label, row["phone_enc"], row["data_key"])
            assert phone is not None
            assert normalise_phone(phone) == phone  # valid, already in E.164
            assert phone.startswith("+861")
            assert phone[3:] not in row["raw"], "the national number is stored in clear"
            assert phone not in row["raw"]
            assert row["phone_bidx"] == cipher.blind_index(label, phone)
    # and nothing shaped like a mobile number anywhere in the sensitive columns
    leaked = await db.fetchval(
        "SELECT count(*) FROM customers WHERE concat(phone_enc, id_number_enc) ~ '1[3-9][0-9]{9}'"
    )
    assert leaked == 0


async def test_a_ciphertext_moved_to_another_column_does_not_decrypt(
    db: asyncpg.Connection, seed_settings: Settings
) -> None:
    stored, data_key = await db.fetchrow(
        "SELECT phone_enc, data_key FROM contacts ORDER BY id LIMIT 1"
    )
    cipher = seed_settings.field_cipher
    assert cipher.decrypt("contact.phone", stored, data_key)
    try:
        cipher.decrypt("customer.phone", stored, data_key)
    except ValueError:
        pass
    else:
        raise AssertionError("a contact's phone decrypted under the customer label")


async def test_people_carry_valid_id_numbers_and_companies_valid_credit_codes(
    db: asyncpg.Connection, seed_settings: Settings
) -> None:
    cipher = seed_settings.field_cipher
    rows = await db.fetch(
        "SELECT kind, credit_code, id_number_enc, id_number_bidx, industry, data_key FROM customers"
    )
    kinds = {row["kind"] for row in rows}
    assert kinds == {"COMPANY", "PERSON"}
    for row in rows:
        if row["kind"] == "COMPANY":
            assert is_valid_credit_code(row["credit_code"]), row["credit_code"]
            assert row["id_number_enc"] is None
        else:
            assert row["credit_code"] is None
            number = cipher.decrypt("customer.id_number", row["id_number_enc"], row["data_key"])
            assert normalise_id_number(number, today=NOW.date()) == number
            assert row["id_number_bidx"] == cipher.blind_index("customer.id_number", number)
            assert not re.search(r"\d{17}", row["id_number_enc"] or "")


async def test_emails_are_valid_and_vocabulary_values_are_canonical(
    db: asyncpg.Connection, seed_settings: Settings
) -> None:
    vocabularies = default_vocabularies()

    def canonical(name: VocabularyName, values: set[str]) -> None:
        known = set(vocabularies[name].canonical_values)
        assert values <= known, values - known

    rows = await db.fetch("SELECT DISTINCT region FROM customers")
    canonical(VocabularyName.REGION, {row["region"] for row in rows})
    rows = await db.fetch("SELECT DISTINCT industry FROM customers WHERE industry IS NOT NULL")
    canonical(VocabularyName.INDUSTRY, {row["industry"] for row in rows})
    rows = await db.fetch("SELECT DISTINCT source FROM customers")
    canonical(VocabularyName.SOURCE, {row["source"] for row in rows})
    rows = await db.fetch("SELECT DISTINCT unnest(tags) AS tag FROM customers")
    canonical(VocabularyName.TAG, {row["tag"] for row in rows})
    emails = await db.fetch(
        "(SELECT 'customer' AS t, email, email_enc, email_bidx, data_key FROM customers"
        " ORDER BY id LIMIT 500) UNION ALL (SELECT 'contact', email, email_enc, email_bidx,"
        " data_key FROM contacts ORDER BY id LIMIT 500)"
    )
    assert all(row["email"] is None for row in emails)  # encrypted at rest, not in clear
    cipher = seed_settings.field_cipher
    clear = [
        (row["t"], cipher.decrypt(f"{row['t']}.email", row["email_enc"], row["data_key"]), row)
        for row in emails
    ]
    invalid = [email for _, email, _ in clear if not is_valid_email(email)]
    assert invalid == []
    for table, email, row in clear:  # blind-indexed case-insensitively
        assert row["email_bidx"] == cipher.blind_index(f"{table}.email", email.lower())


async def test_dates_are_consistent_and_in_the_past(db: asyncpg.Connection) -> None:
    checks = {
        "customer updated before created": (
            "SELECT count(*) FROM customers WHERE updated_at < created_at OR updated_at > $1"
        ),
        "last interaction is not the latest interaction": (
            "SELECT count(*) FROM customers c WHERE c.last_interaction_at IS DISTINCT FROM "
            "(SELECT max(occurred_at) FROM interactions i WHERE i.customer_id = c.id) "
            "AND $1::timestamptz IS NOT NULL"
        ),
        "ticket resolved before opened": (
            "SELECT count(*) FROM tickets WHERE resolved_at < opened_at OR opened_at > $1"
        ),
        "resolved ticket without resolution time": (
            "SELECT count(*) FROM tickets WHERE (status IN ('RESOLVED','CLOSED')) "
            "<> (resolved_at IS NOT NULL) AND $1::timestamptz IS NOT NULL"
        ),
    }
    for what, sql in checks.items():
        assert await db.fetchval(sql, NOW) == 0, what


async def test_opportunity_history_walks_the_funnel_to_the_current_stage(
    db: asyncpg.Connection,
) -> None:
    wrong = await db.fetchval(
        """
        SELECT count(*) FROM opportunities o
        WHERE o.stage <> 'LEAD' AND o.stage IS DISTINCT FROM (
            SELECT s.to_stage FROM opportunity_stage_changes s
            WHERE s.opportunity_id = o.id ORDER BY s.at DESC, s.id DESC LIMIT 1)
        """
    )
    assert wrong == 0
    won_paths = await db.fetch(
        "SELECT array_agg(s.to_stage ORDER BY s.id) AS path FROM opportunity_stage_changes s "
        "JOIN opportunities o ON o.id = s.opportunity_id WHERE o.stage = 'WON' "
        "GROUP BY o.id LIMIT 20"
    )
    assert {tuple(row["path"]) for row in won_paths} == {
        ("QUALIFIED", "PROPOSAL", "NEGOTIATION", "WON")
    }


class _Rollback(Exception):
    """Raised to undo the probe rows of a test."""


async def test_identities_continue_after_the_copied_ids(db: asyncpg.Connection) -> None:
    department = await db.fetchval("SELECT id FROM departments WHERE name = '华东销售'")
    owner = await db.fetchval("SELECT id FROM users WHERE username = 'alice'")
    with pytest.raises(_Rollback):
        async with db.transaction():
            new_id = await db.fetchval(
                "INSERT INTO customers (name, owner_id, department_id) "
                "VALUES ('新客户', $1, $2) RETURNING id",
                owner,
                department,
            )
            assert new_id > SEEDED_CUSTOMERS
            contact = await db.fetchval(
                "INSERT INTO contacts (customer_id, name) VALUES ($1, '张三') RETURNING id",
                new_id,
            )
            assert contact > SEEDED_CUSTOMERS * 5
            raise _Rollback
