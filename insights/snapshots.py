"""Materialised views behind the costliest insight, the funnel, and their refresh schedule.

The stage history of every opportunity in a large scope takes seconds to walk (lag over 560 000
moves for 100 000 customers), so `insight_funnel_stages` and `insight_funnel_stays` (migration
0004) pre-aggregate it per department, customer owner and deal owner. Those are the facts row
scopes and field masks are written on, so the caller's predicate still applies to the snapshot:
a snapshot serves a request only when the predicates do not name individual customers (partner
tokens) and no time window is asked for; otherwise the funnel is computed live.

Between refreshes a snapshot shows the book as it was at `refreshed_at` (the response says so):
rows created, archived or moved to another owner or department since then count as they did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from policy.predicates import AllOf, AmongCustomers, AnyOf, Not, Predicate
from resolvers.context import RequestContext

log = logging.getLogger("dossier.insights")

FUNNEL = "funnel"
# any constant: keeps two server processes from refreshing at the same time
REFRESH_LOCK_KEY = 0x1_5164_7
_metadata = MetaData()

FUNNEL_STAGES = Table(
    "insight_funnel_stages",
    _metadata,
    Column("department_id", BigInteger),
    Column("owner_id", BigInteger),
    Column("deal_owner_id", BigInteger),  # 0: no owner
    Column("stage", String(20)),
    Column("mask", Integer),  # stages reached, one bit each (funnel.BITS)
    Column("opportunities", BigInteger),
    Column("amount", Numeric(16, 2)),
)
FUNNEL_STAYS = Table(
    "insight_funnel_stays",
    _metadata,
    Column("department_id", BigInteger),
    Column("owner_id", BigInteger),
    Column("deal_owner_id", BigInteger),
    Column("stage", String(20)),
    Column("bucket", Integer),  # days, see `bucket_value`
    Column("moves", BigInteger),
)
SERVICE = "serviceBoard"
SEGMENTS = "customerSegments"
LEADERBOARD = "leaderboard"
ATTENTION = "attention"

# migration 0005: per department × customer owner, as of the refresh
TICKET_GROUPS = Table(
    "insight_ticket_groups",
    _metadata,
    Column("department_id", BigInteger),
    Column("owner_id", BigInteger),
    Column("status", String(20)),
    Column("priority", String(10)),
    Column("assignee_id", BigInteger),  # 0: nobody
    Column("age_hours", Integer),  # unresolved: whole hours open, capped; -1 otherwise
    Column("tickets", BigInteger),
    Column("satisfaction_sum", BigInteger),
    Column("satisfaction_count", BigInteger),
)
TICKET_RESOLUTIONS = Table(
    "insight_ticket_resolutions",
    _metadata,
    Column("department_id", BigInteger),
    Column("owner_id", BigInteger),
    Column("bucket", Integer),  # hours to resolve, see `bucket_value`
    Column("tickets", BigInteger),
)
CUSTOMER_FACETS = Table(
    "insight_customer_facets",
    _metadata,
    Column("department_id", BigInteger),
    Column("owner_id", BigInteger),
    Column("facet", String(20)),  # segment, level, region, industry
    Column("value", String(100)),
    Column("unpriced", String(20)),  # segment: the segment when amounts are hidden
    Column("customers", BigInteger),
)
LEADERBOARD_FIGURES = Table(
    "insight_leaderboard",
    _metadata,
    Column("department_id", BigInteger),
    Column("owner_id", BigInteger),
    Column("kind", String(10)),  # new, won, notes
    Column("who", BigInteger),
    Column("days", Integer),  # the period: one of InsightPeriod
    Column("count", BigInteger),
    Column("amount", Numeric(16, 2)),
)
ATTENTION_FACTS = Table(
    "insight_attention_facts",
    _metadata,
    Column("customer_id", BigInteger),
    Column("department_id", BigInteger),
    Column("owner_id", BigInteger),
    Column("level", String(1)),
    Column("quiet_since", DateTime(timezone=True)),
    Column("won_recent", Numeric(16, 2)),
    Column("won_prior", Numeric(16, 2)),
    Column("follow_up_due", Date),
    Column("open_urgent", Integer),
)
AGE_CAP_HOURS = 744  # as migration 0005: SLA hours above it are answered live
CHURN_WINDOW_DAYS = 90  # as migration 0005: another churn window is answered live

VIEWS = {
    FUNNEL: (FUNNEL_STAGES.name, FUNNEL_STAYS.name),
    SERVICE: (TICKET_GROUPS.name, TICKET_RESOLUTIONS.name),
    SEGMENTS: (CUSTOMER_FACETS.name,),
    LEADERBOARD: (LEADERBOARD_FIGURES.name,),
    ATTENTION: (ATTENTION_FACTS.name,),
}
BUCKET_BASE = 0.01
BUCKET_GROWTH = 1.05


def bucket_value(bucket: int) -> float:
    """A representative value for a bucket: its geometric middle (within 2.5 % of any member)."""
    if bucket <= 0:
        return BUCKET_BASE / 2
    return float(BUCKET_BASE * BUCKET_GROWTH ** (bucket - 0.5))


def percentile(buckets: list[tuple[int, int]], fraction: float) -> float:
    """`percentile_cont(fraction)` over bucketed values, each bucket read as its middle.

    Both ranks interpolated between are within 2.5 % of their true values, so the result is too.
    `buckets` are (bucket, count) in ascending bucket order, with a positive total.
    """
    total = sum(n for _, n in buckets)
    position = (total - 1) * fraction

    def value_at(rank: int) -> float:
        seen = 0
        for bucket, n in buckets:
            seen += n
            if rank < seen:
                return bucket_value(bucket)
        return bucket_value(buckets[-1][0])

    low, high = math.floor(position), math.ceil(position)
    return value_at(low) + (value_at(high) - value_at(low)) * (position - low)


def names_customers(predicate: Predicate) -> bool:
    """Whether a predicate picks individual customers, which a snapshot has aggregated away."""
    if isinstance(predicate, AmongCustomers):
        return True
    if isinstance(predicate, AnyOf | AllOf):
        return any(names_customers(part) for part in predicate.parts)
    if isinstance(predicate, Not):
        return names_customers(predicate.part)
    return False


async def refreshed_at(context: RequestContext, insight: str) -> datetime | None:
    """When the insight's snapshot was last refreshed; None before the first refresh."""
    exists = await context.db.execute(text("SELECT to_regclass('insight_refreshes') IS NOT NULL"))
    if not exists.scalar_one():
        return None  # a database migrated before the snapshots existed: answer live
    found = await context.db.execute(
        text("SELECT refreshed_at FROM insight_refreshes WHERE view_name = :name"),
        {"name": insight},
    )
    value = found.scalar_one_or_none()
    return value if isinstance(value, datetime) else None


async def refresh_snapshots(connection: AsyncConnection) -> dict[str, datetime]:
    """Refresh every snapshot and record when; the caller commits. Concurrent when populated,
    so readers keep the previous snapshot while the new one is built."""
    done: dict[str, datetime] = {}
    for insight, views in VIEWS.items():
        populated = (
            await connection.execute(
                text("SELECT bool_and(ispopulated) FROM pg_matviews WHERE matviewname = ANY(:v)"),
                {"v": list(views)},
            )
        ).scalar_one()
        how = "CONCURRENTLY " if populated else ""
        for view in views:
            await connection.execute(text(f"REFRESH MATERIALIZED VIEW {how}{view}"))
            # fresh statistics: a scope's `IN` over stale ones is planned as a few rows
            await connection.execute(text(f"ANALYZE {view}"))
        at = (
            await connection.execute(
                text(
                    "INSERT INTO insight_refreshes (view_name, refreshed_at) VALUES (:n, now())"
                    " ON CONFLICT (view_name) DO UPDATE SET refreshed_at = excluded.refreshed_at"
                    " RETURNING refreshed_at"
                ),
                {"n": insight},
            )
        ).scalar_one()
        done[insight] = at
    return done


async def discard_snapshots(connection: AsyncConnection) -> None:
    """Empty the snapshots again: insights answer live until the next refresh."""
    for views in VIEWS.values():
        for view in views:
            await connection.execute(text(f"REFRESH MATERIALIZED VIEW {view} WITH NO DATA"))
    await connection.execute(text("DELETE FROM insight_refreshes"))


# how many snapshots were ever taken, and how old in seconds the oldest is
_SNAPSHOT_AGE = text(
    "SELECT count(*), extract(epoch FROM now() - min(refreshed_at)) FROM insight_refreshes"
)


class SnapshotRefresher:
    """Refreshes the snapshots every `interval` seconds while the server runs.

    Meant for the lifespan: `await refresher.start()` after the engine exists, `await
    refresher.stop()` before it is disposed. Of several server processes, the one holding the
    advisory lock refreshes; the others skip that round.
    """

    def __init__(self, engine: AsyncEngine, interval: float) -> None:
        self._engine = engine
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="insight-snapshots")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def refresh_once(self) -> bool:
        async with self._engine.begin() as connection:
            await connection.execute(text("SET LOCAL statement_timeout = 0"))
            locked = await connection.execute(
                text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": REFRESH_LOCK_KEY}
            )
            if not locked.scalar_one():
                return False
            await refresh_snapshots(connection)
        return True

    async def due_in(self) -> float:
        """Seconds until the snapshots are due: 0 when one was never taken or is older than
        the interval.

        Processes share the snapshots, so one that starts (a restart, a new worker, a scaled-out
        host) right after another refreshed waits for the interval instead of refreshing them
        again: at 100 000 customers a refresh costs the database seconds of CPU.
        """
        async with self._engine.connect() as connection:
            taken, age = (await connection.execute(_SNAPSHOT_AGE)).one()
        if taken < len(VIEWS) or age is None:
            return 0.0
        return max(0.0, self._interval - float(age))

    async def _run(self) -> None:
        while True:
            wait = self._interval
            try:
                if (due := await self.due_in()) > 0:
                    wait = due
                else:
                    await self.refresh_once()
            except Exception:  # a failed refresh keeps the old snapshot; retry next round
                log.exception("insight snapshot refresh failed")
            await asyncio.sleep(wait)


async def serving_at(
    context: RequestContext,
    insight: str,
    predicates: list[Predicate],
    *,
    keeps_customers: bool = False,
) -> datetime | None:
    """When the snapshot that may answer this request was taken; None: answer live.

    A snapshot aggregated per department and owner cannot apply a predicate naming individual
    customers (a partner token's), unless it `keeps_customers` (one row per customer).
    """
    if not keeps_customers and any(names_customers(p) for p in predicates):
        return None
    return await refreshed_at(context, insight)
