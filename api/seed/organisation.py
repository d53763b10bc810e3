"""The demo organisation of docs/api.md: departments, people, their roles and the default rules.

Generated data sets add sales reps (one per `CUSTOMERS_PER_REP` customers) and service agents
(one per `CUSTOMERS_PER_AGENT`), so that ownership stays realistic at 100 000 customers instead
of one person owning half the book. They all share the demo password's single hash.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from api.seed.customers import chinese_person
from policy.demo import PolicyLine, demo_policy_lines, role_line

DEMO_PASSWORD = "dossier-demo"  # noqa: S105  # the published demo password (docs/api.md)
CUSTOMERS_PER_REP = 2_000
CUSTOMERS_PER_AGENT = 10_000
EAST_SHARE = 0.55  # the generator's share of non-key accounts that go to East Sales

# name, English name, parent (None: the root)
DEPARTMENTS: tuple[tuple[str, str, str | None], ...] = (
    ("总部", "HQ", None),
    ("销售部", "Sales", "总部"),
    ("华东销售", "East Sales", "销售部"),
    ("华北销售", "North Sales", "销售部"),
    ("客服部", "Service", "总部"),
    ("财务部", "Finance", "总部"),
    ("合规部", "Compliance", "总部"),
)

# username, display name, home department
DEMO_USERS: tuple[tuple[str, str, str], ...] = (
    ("admin", "系统管理员 Admin", "总部"),
    ("alice", "陈爱丽 Alice Chen", "华东销售"),
    ("bob", "王博 Bob Wang", "销售部"),
    ("carol", "李卡萝 Carol Li", "客服部"),
    ("dave", "张大伟 Dave Zhang", "财务部"),
    ("erin", "刘艾琳 Erin Liu", "合规部"),
    ("frank", "赵方可 Frank Zhao", "华北销售"),
)


@dataclass(frozen=True)
class ExtraStaff:
    """A generated colleague of the demo users: username, display name, department, role."""

    username: str
    display_name: str
    department: str
    role: str


def extra_staff(customers: int, seed: int) -> list[ExtraStaff]:
    """Sales reps and service agents beyond the demo users, in proportion to `customers`."""
    rng = random.Random(f"dossier-staff:{seed}")  # noqa: S311  # reproducible names, not secrets
    reps = customers // CUSTOMERS_PER_REP
    east = round(reps * EAST_SHARE)
    plan = [
        ("east-rep", "华东销售", "sales_rep", east),
        ("north-rep", "华北销售", "sales_rep", reps - east),
        ("service-agent", "客服部", "service_agent", customers // CUSTOMERS_PER_AGENT),
    ]
    return [
        ExtraStaff(f"{prefix}-{number:03d}", chinese_person(rng)[0], department, role)
        for prefix, department, role, count in plan
        for number in range(1, count + 1)
    ]


async def create_departments(connection: asyncpg.Connection) -> dict[str, int]:
    ids: dict[str, int] = {}
    for name, _english, parent in DEPARTMENTS:
        ids[name] = await connection.fetchval(
            "INSERT INTO departments (name, parent_id) VALUES ($1, $2) RETURNING id",
            name,
            ids[parent] if parent else None,
        )
    return ids


async def create_users(
    connection: asyncpg.Connection,
    department_ids: dict[str, int],
    staff: Sequence[ExtraStaff],
    password_hash: str,
) -> dict[str, int]:
    people = [*DEMO_USERS, *((s.username, s.display_name, s.department) for s in staff)]
    rows = await connection.fetch(
        """
        INSERT INTO users (username, display_name, password_hash, department_id)
        SELECT u.username, u.display_name, $3, u.department_id
        FROM unnest($1::text[], $2::text[], $4::bigint[])
             WITH ORDINALITY AS u(username, display_name, department_id, position)
        ORDER BY u.position
        RETURNING id, username
        """,
        [username for username, _, _ in people],
        [display for _, display, _ in people],
        password_hash,
        [department_ids[department] for _, _, department in people],
    )
    return {row["username"]: row["id"] for row in rows}


def policy_lines(department_ids: dict[str, int], staff: Sequence[ExtraStaff]) -> list[PolicyLine]:
    """The lead's demo rules and assignments, plus a role for every generated colleague."""
    lines = demo_policy_lines(department_ids)
    lines += [role_line(s.username, s.role, department_ids[s.department]) for s in staff]
    return lines


async def store_policy_lines(connection: asyncpg.Connection, lines: Sequence[PolicyLine]) -> None:
    await connection.copy_records_to_table(
        "policy_rules",
        records=lines,
        columns=("ptype", "v0", "v1", "v2", "v3", "v4", "v5"),
    )
