"""A small fixed organisation and customer book whose insights are worked out by hand.

Every date is relative to `NOW`, taken when the data is loaded, and sits days away from any
threshold, so the queries (which use the clock at request time) see the same picture.

Customers (owner, department, level, region, industry, created, last interaction):
  1 alice 华东销售 A 上海 制造业   -400d  -40d
  2 alice 华东销售 B 浙江 信息技术 -200d  -10d
  3 frank 华北销售 C 北京 制造业   -20d   none
  4 bob   销售部   A 北京 金融业   -10d   -5d
  5 frank 华北销售 C 天津 (none)   -500d  -100d
  6 alice 华东销售, archived: it and everything hanging off it are invisible
  7 admin 总部     C 广东 教育     -35d   -1d   (outside Sales: finance sees it, bob does not)
Opportunities (customer, stage, amount, created, moves as (from, to, days ago)):
  1 c1 WON 100000 -300: LEAD>QUALIFIED -290, >PROPOSAL -280, >NEGOTIATION -270, >WON -150
  2 c1 WON  20000  -60: LEAD>QUALIFIED -50, >PROPOSAL -45, >NEGOTIATION -40, >WON -25
  3 c2 LOST 50000 -100: LEAD>QUALIFIED -80, QUALIFIED>LOST -70
  4 c2 LEAD 30000  -20
  5 c3 QUALIFIED 40000 -15: LEAD>QUALIFIED -10
  6 c4 PROPOSAL 500000 -9: LEAD>QUALIFIED -8, >PROPOSAL -6
  7 c5 WON   8000 -400: LEAD>QUALIFIED -390, >PROPOSAL -380, >NEGOTIATION -370, >WON -360
  8 c6 WON 999999 (archived customer)      9 c2 LEAD 777, itself archived
  10 c7 LEAD 1000 -5
Tickets (customer, status, priority, assignee, opened, hours to resolve, satisfaction):
  1 c1 CLOSED NORMAL carol -10d 10h 5     2 c1 RESOLVED HIGH carol -5d 20h 3
  3 c1 OPEN URGENT none -1d               4 c2 IN_PROGRESS NORMAL carol -2d
  5 c2 OPEN LOW carol -8d                 6 c3 CLOSED URGENT carol -3d 2h 4
  7 c4 OPEN URGENT carol -1h              8 c5 RESOLVED LOW none -30d 40h
  9 c7 OPEN HIGH none -2d                 10 c6 OPEN URGENT (archived customer)
Interactions (customer, author, occurred, next follow-up):
  1 c1 alice -40d today-10   2 c1 alice -60d today-45   3 c2 alice -10d today+5
  4 c2 alice -20d today-15   5 c4 bob -5d               6 c5 frank -100d today-90
  7 c7 admin -1d             8 c6 alice -3d today-2 (archived customer)
`grace` (销售部, role regional_lead) reads opportunities of the Sales subtree but their amounts
only in 销售部 itself: a row-dependent mask.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from starlette.applications import Starlette

from api.app import create_app
from api.seed.organisation import (
    DEMO_PASSWORD,
    ExtraStaff,
    create_departments,
    create_users,
    store_policy_lines,
)
from api.settings import Settings
from identity.partner_tokens import issue_partner_token
from identity.passwords import hash_password
from policy.demo import PolicyLine, demo_policy_lines, role_line
from tests.conftest import fresh_database, migrated_engine, settings_for

NOW = datetime.now(UTC)
TODAY = NOW.date()
PARTNER_SHARED = (1, 3)

REGIONAL_LEAD_RULES: list[PolicyLine] = [
    ("p", "regional_lead", "*", "customer", "READ", "SUBTREE", "allow"),
    ("p", "regional_lead", "*", "opportunity", "READ", "SUBTREE", "allow"),
    ("p", "regional_lead", "*", "opportunity.amount", "READ", "DEPARTMENT", "allow"),
    ("p", "regional_lead", "*", "user", "READ", "ALL", "allow"),
]


def ago(days: float = 0, hours: float = 0) -> datetime:
    return NOW - timedelta(days=days, hours=hours)


def day(offset: int) -> date:
    return TODAY + timedelta(days=offset)


@dataclass(frozen=True)
class Book:
    departments: dict[str, int]
    users: dict[str, int]


async def _load(connection: asyncpg.Connection) -> Book:
    departments = await create_departments(connection)
    password_hash = await asyncio.to_thread(hash_password, DEMO_PASSWORD)
    grace = ExtraStaff("grace", "Grace", "销售部", "regional_lead")
    users = await create_users(connection, departments, [grace], password_hash)
    lines = demo_policy_lines(departments) + REGIONAL_LEAD_RULES
    lines.append(role_line("grace", "regional_lead", departments["销售部"]))
    await store_policy_lines(connection, lines)
    u, d = users, departments
    east, north, sales, hq = d["华东销售"], d["华北销售"], d["销售部"], d["总部"]
    customers = [
        (1, "上海一号", "A", "上海", "制造业", u["alice"], east, ago(400), ago(40), None),
        (2, "杭州二号", "B", "浙江", "信息技术", u["alice"], east, ago(200), ago(10), None),
        (3, "北京三号", "C", "北京", "制造业", u["frank"], north, ago(20), None, None),
        (4, "北京四号", "A", "北京", "金融业", u["bob"], sales, ago(10), ago(5), None),
        (5, "天津五号", "C", "天津", None, u["frank"], north, ago(500), ago(100), None),
        (6, "已归档六号", "B", "上海", "制造业", u["alice"], east, ago(50), ago(3), ago(1)),
        (7, "广州七号", "C", "广东", "教育", u["admin"], hq, ago(35), ago(1), None),
    ]
    await connection.executemany(
        """INSERT INTO customers (id, name, level, region, industry, owner_id, department_id,
               created_at, updated_at, last_interaction_at, archived_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10)""",
        customers,
    )
    owner = {row[0]: row[5] for row in customers}
    opportunities = [
        (1, 1, "WON", Decimal(100000), ago(300), None),
        (2, 1, "WON", Decimal(20000), ago(60), None),
        (3, 2, "LOST", Decimal(50000), ago(100), None),
        (4, 2, "LEAD", Decimal(30000), ago(20), None),
        (5, 3, "QUALIFIED", Decimal(40000), ago(15), None),
        (6, 4, "PROPOSAL", Decimal(500000), ago(9), None),
        (7, 5, "WON", Decimal(8000), ago(400), None),
        (8, 6, "WON", Decimal(999999), ago(50), None),
        (9, 2, "LEAD", Decimal(777), ago(30), ago(2)),
        (10, 7, "LEAD", Decimal(1000), ago(5), None),
    ]
    await connection.executemany(
        """INSERT INTO opportunities (id, customer_id, name, stage, amount, owner_id,
               created_at, updated_at, archived_at)
           VALUES ($1, $2, 'deal', $3, $4, $5, $6, $6, $7)""",
        [(i, c, s, a, owner[c], at, gone) for i, c, s, a, at, gone in opportunities],
    )
    walk = ("LEAD", "QUALIFIED", "PROPOSAL", "NEGOTIATION", "WON")
    moves: list[tuple[int, str, str, datetime]] = []
    for opportunity, days in ((1, (290, 280, 270, 150)), (2, (50, 45, 40, 25)),
                              (7, (390, 380, 370, 360))):  # fmt: skip
        moves += [(opportunity, walk[n], walk[n + 1], ago(d)) for n, d in enumerate(days)]
    moves += [
        (3, "LEAD", "QUALIFIED", ago(80)),
        (3, "QUALIFIED", "LOST", ago(70)),
        (5, "LEAD", "QUALIFIED", ago(10)),
        (6, "LEAD", "QUALIFIED", ago(8)),
        (6, "QUALIFIED", "PROPOSAL", ago(6)),
        (8, "NEGOTIATION", "WON", ago(20)),
    ]
    await connection.executemany(
        """INSERT INTO opportunity_stage_changes (opportunity_id, from_stage, to_stage, at)
           VALUES ($1, $2, $3, $4)""",
        moves,
    )
    carol = u["carol"]
    tickets = [
        (1, 1, "CLOSED", "NORMAL", carol, ago(10), 10, 5),
        (2, 1, "RESOLVED", "HIGH", carol, ago(5), 20, 3),
        (3, 1, "OPEN", "URGENT", None, ago(1), None, None),
        (4, 2, "IN_PROGRESS", "NORMAL", carol, ago(2), None, None),
        (5, 2, "OPEN", "LOW", carol, ago(8), None, None),
        (6, 3, "CLOSED", "URGENT", carol, ago(3), 2, 4),
        (7, 4, "OPEN", "URGENT", carol, ago(hours=1), None, None),
        (8, 5, "RESOLVED", "LOW", None, ago(30), 40, None),
        (9, 7, "OPEN", "HIGH", None, ago(2), None, None),
        (10, 6, "OPEN", "URGENT", None, ago(1), None, None),
    ]
    await connection.executemany(
        """INSERT INTO tickets (id, customer_id, title, status, priority, assignee_id, opened_at,
               resolved_at, satisfaction, created_at, updated_at)
           VALUES ($1, $2, 'issue', $3, $4, $5, $6, $7, $8, $6, $6)""",
        [
            (i, c, s, p, a, at, None if hours is None else at + timedelta(hours=hours), sat)
            for i, c, s, p, a, at, hours, sat in tickets
        ],
    )
    interactions = [
        (1, 1, u["alice"], ago(40), day(-10)),
        (2, 1, u["alice"], ago(60), day(-45)),
        (3, 2, u["alice"], ago(10), day(5)),
        (4, 2, u["alice"], ago(20), day(-15)),
        (5, 4, u["bob"], ago(5), None),
        (6, 5, u["frank"], ago(100), day(-90)),
        (7, 7, u["admin"], ago(1), None),
        (8, 6, u["alice"], ago(3), day(-2)),
    ]
    await connection.executemany(
        """INSERT INTO interactions (id, customer_id, channel, summary, author_id, occurred_at,
               next_follow_up_on, created_at)
           VALUES ($1, $2, 'CALL', 'call', $3, $4, $5, $4)""",
        interactions,
    )
    return Book(departments, users)


@pytest.fixture(scope="package")
def insights_database_url() -> Iterator[str]:
    with fresh_database("dossier_insights") as url:
        yield url


@pytest.fixture(scope="package")
def insights_settings(insights_database_url: str, data_dir: Path) -> Settings:
    return settings_for(insights_database_url, data_dir / "insights")


@pytest.fixture(scope="package")
async def insights_engine(insights_settings: Settings) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(insights_settings) as engine:
        yield engine


@pytest.fixture(scope="package")
async def book(insights_engine: AsyncEngine) -> Book:
    async with insights_engine.connect() as sa_connection:
        raw = await sa_connection.get_raw_connection()
        connection: asyncpg.Connection = raw.driver_connection
        async with connection.transaction():
            return await _load(connection)


@pytest.fixture(scope="package")
async def insights_app(insights_settings: Settings, book: Book) -> AsyncIterator[Starlette]:
    application = create_app(insights_settings)
    async with application.router.lifespan_context(application):
        yield application


@dataclass
class InsightClient:
    """Logs in as the book's users (or holds a partner token) and posts queries."""

    http: httpx.AsyncClient
    tokens: dict[str, str]

    async def token(self, username: str) -> str:
        if username not in self.tokens:
            response = await self.http.post(
                "/auth/token", data={"username": username, "password": DEMO_PASSWORD}
            )
            assert response.status_code == 200, response.text
            self.tokens[username] = response.json()["access_token"]
        return self.tokens[username]

    async def query(
        self, username: str, query: str, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        token = await self.token(username)
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


_TOKENS: dict[str, str] = {}


@pytest.fixture
async def insights(insights_app: Starlette) -> AsyncIterator[InsightClient]:
    transport = httpx.ASGITransport(app=insights_app, client=("127.0.0.1", 50002))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield InsightClient(http, _TOKENS)


@pytest.fixture
async def partner(insights: InsightClient, insights_engine: AsyncEngine) -> str:
    """A partner token sharing customers 1 and 3, registered as the client's `partner` user."""
    if "partner" not in insights.tokens:
        async with async_sessionmaker(insights_engine)() as session:
            issued = await issue_partner_token(
                session,
                partner_name="acme-partner",
                scopes=["customers:read", "contacts:read"],
                customer_ids=list(PARTNER_SHARED),
                expires_in_days=1,
                issued_by="test",
            )
            await session.commit()
        insights.tokens["partner"] = issued.token
    return "partner"


def forbidden_fields(body: dict[str, Any]) -> set[str]:
    return {
        e["extensions"]["field"]
        for e in body.get("errors", [])
        if e.get("extensions", {}).get("code") == "FORBIDDEN"
    }
