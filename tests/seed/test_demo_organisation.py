"""The demo organisation is exactly the one docs/api.md publishes."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.seed import DEMO_PASSWORD, DatabaseNotEmptyError, DemoSummary, seed_demo
from api.settings import Settings
from identity.passwords import verify_password

CONTRACT_DEPARTMENTS = {
    "总部": None,
    "销售部": "总部",
    "华东销售": "销售部",
    "华北销售": "销售部",
    "客服部": "总部",
    "财务部": "总部",
    "合规部": "总部",
}
CONTRACT_USERS = {
    "admin": ("总部", "admin"),
    "alice": ("华东销售", "sales_rep"),
    "bob": ("销售部", "sales_manager"),
    "carol": ("客服部", "service_agent"),
    "dave": ("财务部", "finance"),
    "erin": ("合规部", "compliance_officer"),
    "frank": ("华北销售", "sales_rep"),
}


async def test_departments_form_the_contract_tree(
    seeded: DemoSummary, db: asyncpg.Connection
) -> None:
    rows = await db.fetch(
        "SELECT d.name, p.name AS parent FROM departments d "
        "LEFT JOIN departments p ON p.id = d.parent_id"
    )
    assert {row["name"]: row["parent"] for row in rows} == CONTRACT_DEPARTMENTS
    assert set(seeded.department_ids) == set(CONTRACT_DEPARTMENTS)


async def test_demo_users_sit_in_their_departments_with_their_roles(
    seeded: DemoSummary, db: asyncpg.Connection
) -> None:
    homes = await db.fetch(
        "SELECT u.username, d.name FROM users u JOIN departments d ON d.id = u.department_id "
        "WHERE u.username = ANY($1::text[])",
        list(CONTRACT_USERS),
    )
    assert {row["username"]: row["name"] for row in homes} == {
        user: department for user, (department, _) in CONTRACT_USERS.items()
    }
    assignments = await db.fetch("SELECT v0, v1, v2 FROM policy_rules WHERE ptype = 'g'")
    roles = {(row["v0"], row["v1"], row["v2"]) for row in assignments}
    for user, (department, role) in CONTRACT_USERS.items():
        assert (user, role, str(seeded.department_ids[department])) in roles
    assert ("partner:acme-partner", "partner", "*") in roles


async def test_every_seeded_account_logs_in_with_the_demo_password(
    seeded: DemoSummary, db: asyncpg.Connection
) -> None:
    hashes = await db.fetch("SELECT username, password_hash, is_active FROM users")
    assert len(hashes) == len(seeded.user_ids)
    assert all(row["is_active"] for row in hashes)
    # one hash is shared by design; verify it once, and that it is an argon2id hash
    assert len({row["password_hash"] for row in hashes}) == 1
    ok, _ = verify_password(DEMO_PASSWORD, hashes[0]["password_hash"])
    assert ok
    assert hashes[0]["password_hash"].startswith("$argon2id$")


async def test_generated_staff_hold_roles_in_their_teams(
    seeded: DemoSummary, db: asyncpg.Connection
) -> None:
    rows = await db.fetch(
        "SELECT u.username, d.name, r.v1 AS role FROM users u "
        "JOIN departments d ON d.id = u.department_id "
        "JOIN policy_rules r ON r.ptype = 'g' AND r.v0 = u.username AND r.v2 = d.id::text "
        "WHERE u.username LIKE '%-rep-%' OR u.username LIKE 'service-agent-%'"
    )
    staff = {row["username"]: (row["name"], row["role"]) for row in rows}
    assert staff == {
        "east-rep-001": ("华东销售", "sales_rep"),
        "north-rep-001": ("华北销售", "sales_rep"),
    }
    assert set(seeded.user_ids) == set(CONTRACT_USERS) | set(staff)


async def test_seeding_a_database_that_holds_data_is_refused_and_changes_nothing(
    seeded: DemoSummary, seed_engine: AsyncEngine, seed_settings: Settings, db: asyncpg.Connection
) -> None:
    before = await db.fetchval("SELECT count(*) FROM customers")
    with pytest.raises(DatabaseNotEmptyError, match="empty database"):
        await seed_demo(seed_engine, seed_settings.field_cipher, customers=10)
    assert await db.fetchval("SELECT count(*) FROM customers") == before
    assert await db.fetchval("SELECT count(*) FROM departments") == len(CONTRACT_DEPARTMENTS)
