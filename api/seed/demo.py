"""`seed_demo`: the demo organisation plus N generated customers, in one transaction.

Either everything is stored or nothing is: a failed or interrupted seed leaves the database
empty and ready for another attempt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from api.seed.customers import TABLES, Block, CustomerGenerator, SalesForce
from api.seed.loader import (
    advance_sequences,
    defer_checks,
    load_blocks,
    present_columns,
    present_tables,
    restore_checks,
)
from api.seed.organisation import (
    DEMO_PASSWORD,
    ExtraStaff,
    create_departments,
    create_users,
    extra_staff,
    policy_lines,
    store_policy_lines,
)
from db.crypto import FieldCipher
from identity.passwords import hash_password

DEFAULT_CUSTOMERS = 300
# any constant will do: it keeps two seeders from racing on one database
SEED_LOCK_KEY = 0x0D055E5


class DatabaseNotEmptyError(RuntimeError):
    """The target database already holds an organisation: seeding would mix two of them."""


@dataclass(frozen=True)
class DemoSummary:
    """What a seed created: ids to log in and test with, and the rows per table."""

    department_ids: Mapping[str, int]  # by Chinese name: 总部, 销售部, 华东销售, …
    user_ids: Mapping[str, int]  # by username: admin, alice, …, east-rep-001, …
    counts: Mapping[str, int]  # rows per table, including departments, users, policy_rules
    password: str = DEMO_PASSWORD

    @property
    def total_rows(self) -> int:
        return sum(self.counts.values())


async def seed_demo(
    engine: AsyncEngine,
    cipher: FieldCipher,
    *,
    customers: int = DEFAULT_CUSTOMERS,
    seed: int = 42,
    now: datetime | None = None,
    on_block: Callable[[Block], None] | None = None,
) -> DemoSummary:
    """Create the demo organisation and `customers` generated customers in an empty database.

    The same `customers` and `seed` give the same clear-text data (`now` anchors the dates;
    it defaults to the current time). Raises DatabaseNotEmptyError when departments, users,
    customers or policies already exist.
    """
    if customers < 0:
        raise ValueError("customers must not be negative")
    now = now or datetime.now(UTC)
    staff = extra_staff(customers, seed)
    # one hash for every demo account: argon2 costs ~20 ms, and they share the password anyway
    password_hash = await asyncio.to_thread(hash_password, DEMO_PASSWORD)

    async with engine.connect() as sa_connection:
        raw = await sa_connection.get_raw_connection()
        connection: asyncpg.Connection = raw.driver_connection  # asyncpg under the adapter
        async with connection.transaction():
            # a large COPY outlives the server's per-statement timeout for requests
            await connection.execute("SET LOCAL statement_timeout = 0")
            await connection.execute("SELECT pg_advisory_xact_lock($1)", SEED_LOCK_KEY)
            await _refuse_non_empty(connection)
            department_ids = await create_departments(connection)
            user_ids = await create_users(connection, department_ids, staff, password_hash)
            lines = policy_lines(department_ids, staff)
            await store_policy_lines(connection, lines)
            force = _sales_force(department_ids, user_ids, staff)
            generator = CustomerGenerator(cipher=cipher, force=force, seed=seed, now=now)
            blocks = generator.blocks(customers, dict.fromkeys(TABLES, 1))
            tables = await present_tables(connection)
            checks = await defer_checks(connection, tables)
            columns = await present_columns(connection, tables)
            counts = await load_blocks(connection, blocks, on_block, tables, columns)
            await restore_checks(connection, checks)
            await advance_sequences(connection, tables)
        for table in tables:
            await connection.execute(f"ANALYZE {table}")

    return DemoSummary(
        department_ids=department_ids,
        user_ids=user_ids,
        counts={
            "departments": len(department_ids),
            "users": len(user_ids),
            "policy_rules": len(lines),
            **counts,
        },
    )


ORGANISATION_TABLES = ("departments", "users", "customers", "policy_rules")


async def occupied_tables(connection: asyncpg.Connection) -> list[str]:
    """Which of the organisation's tables already hold rows."""
    return [
        table
        for table in ORGANISATION_TABLES
        if await connection.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})")  # noqa: S608  # fixed table names
    ]


async def database_is_empty(engine: AsyncEngine) -> bool:
    """True when no department, user, customer or policy exists yet: a first start."""
    async with engine.connect() as sa_connection:
        raw = await sa_connection.get_raw_connection()
        return not await occupied_tables(raw.driver_connection)


async def _refuse_non_empty(connection: asyncpg.Connection) -> None:
    occupied = await occupied_tables(connection)
    if occupied:
        raise DatabaseNotEmptyError(
            f"the database already holds data ({', '.join(occupied)}): the demo data set is "
            "only loaded into an empty database"
        )


def _sales_force(
    department_ids: Mapping[str, int], user_ids: Mapping[str, int], staff: Sequence[ExtraStaff]
) -> SalesForce:
    def members(department: str, role: str, *demo: str) -> list[int]:
        extra = [
            user_ids[s.username] for s in staff if (s.department, s.role) == (department, role)
        ]
        return [user_ids[name] for name in demo] + extra

    return SalesForce(
        sales_department=department_ids["销售部"],
        east_department=department_ids["华东销售"],
        north_department=department_ids["华北销售"],
        key_account_owner=user_ids["bob"],
        east_reps=members("华东销售", "sales_rep", "alice"),
        north_reps=members("华北销售", "sales_rep", "frank"),
        service_agents=members("客服部", "service_agent", "carol"),
        usernames={user_id: username for username, user_id in user_ids.items()},
    )
